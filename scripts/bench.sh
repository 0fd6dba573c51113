#!/usr/bin/env bash
# bench.sh: speed of foretoken on synthetic TinyLlama-1.1B models (random
# weights, real shapes) in q4_0, q8_0, q4_k_m and f16, llama-bench style.
#
#   scripts/bench.sh                 # pp512 + tg128, 2 threads, 3 runs
#   P=128 N=64 T=2 R=3 TYPES="q4_0 q8_0" scripts/bench.sh
#   LLAMA_BENCH=/path/to/llama-bench scripts/bench.sh   # also llama.cpp, with ratios
#   FORETOKEN_BIN=./foretoken scripts/bench.sh          # an existing binary
#   C=1,2,4,8 scripts/bench.sh       # also aggregate tg t/s of 1, 2, 4, 8 sequences
#                                    # decoding together (continuous batching)
#
# The models (about 0.6-2.2 GB each) are made once in $BENCH_DIR
# (default: $TMPDIR/foretoken-bench) with 'foretoken synth'. The machine's
# other load skews the figures: run it on a quiet machine.
set -euo pipefail

cd "$(dirname "$0")/.."
P=${P:-512}
N=${N:-128}
T=${T:-2}
R=${R:-3}
C=${C:-}
TYPES=${TYPES:-"q4_0 q8_0 q4_k_m f16"}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/foretoken-bench}
VOCAB=${VOCAB:-../shared/models/stories260K.gguf}
mkdir -p "$BENCH_DIR"
# FORETOKEN_BIN: use this binary instead of building one.
BIN=${FORETOKEN_BIN:-$BENCH_DIR/foretoken}
if [[ -z "${FORETOKEN_BIN:-}" ]]; then
	go build -o "$BIN" ./cmd/foretoken
fi

# tps FILE TEST: tokens_per_second of TEST in foretoken's --json lines.
tps() {
	grep "\"test\":\"$2\"" "$1" | sed -E 's/.*"tokens_per_second":([0-9.eE+-]+).*/\1/' | head -n1
}
sd() {
	grep "\"test\":\"$2\"" "$1" | sed -E 's/.*"stddev":([0-9.eE+-]+).*/\1/' | head -n1
}
gbs() {
	grep "\"test\":\"$2\"" "$1" | sed -E 's/.*"weight_gb_per_second":([0-9.eE+-]+).*/\1/' | head -n1
}

# llama TYPE FILE: llama-bench's pp and tg tokens/s ("pp tg"), or "- -".
llama() {
	if [[ -z "${LLAMA_BENCH:-}" ]]; then
		echo "- -"
		return
	fi
	"$LLAMA_BENCH" -m "$1" -p "$P" -n "$N" -t "$T" -r "$R" -o csv 2>/dev/null |
		python3 -c '
import csv, sys
pp = tg = "-"
for row in csv.DictReader(sys.stdin):
    if int(row["n_prompt"]) > 0 and int(row["n_gen"]) == 0: pp = "%.2f" % float(row["avg_ts"])
    if int(row["n_gen"]) > 0 and int(row["n_prompt"]) == 0: tg = "%.2f" % float(row["avg_ts"])
print(pp, tg)'
}

ratio() {
	if [[ "$2" == "-" || -z "$2" ]]; then echo "-"; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
}

rows=()
crows=()
for typ in $TYPES; do
	model="$BENCH_DIR/tinyllama-1.1b-synth.$typ.gguf"
	if [[ ! -s "$model" ]]; then
		echo "making $model ..." >&2
		"$BIN" synth --shape tinyllama-1.1b --vocab "$VOCAB" --type "$typ" -o "$model.tmp"
		mv "$model.tmp" "$model"
	fi
	out="$BENCH_DIR/$typ.jsonl"
	echo "benchmarking $typ ..." >&2
	"$BIN" bench -m "$model" -p "$P" -n "$N" -t "$T" -r "$R" ${C:+-c "$C"} --json >"$out"
	read -r lpp ltg < <(llama "$model")
	pp=$(tps "$out" "pp$P")
	tg=$(tps "$out" "tg$N")
	rows+=("$(printf '| %-7s | %9.2f ± %-6.2f | %9.2f ± %-6.2f | %8.2f | %9s | %9s | %8s | %8s |' \
		"$typ" "$pp" "$(sd "$out" "pp$P")" "$tg" "$(sd "$out" "tg$N")" "$(gbs "$out" "tg$N")" \
		"$lpp" "$ltg" "$(ratio "$pp" "$lpp")" "$(ratio "$tg" "$ltg")")")
	if [[ -n "$C" ]]; then
		row="| $(printf '%-7s' "$typ") |"
		for c in ${C//,/ }; do
			row+=" $(printf '%14.2f' "$(tps "$out" "tg$N x$c")") |"
		done
		crows+=("$row")
	fi
done

echo
echo "synthetic TinyLlama-1.1B, $T threads, $R runs, kernels: $(grep -o '"kernels":"[^"]*"' "$out" | head -n1 | cut -d'"' -f4)"
printf '| %-7s | %18s | %18s | %8s | %9s | %9s | %8s | %8s |\n' type "pp$P t/s" "tg$N t/s" "tg GB/s" "llama pp" "llama tg" "pp ratio" "tg ratio"
printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' ------- ------------------ ------------------ -------- --------- --------- -------- --------
printf '%s\n' "${rows[@]}"

if [[ -n "$C" ]]; then
	echo
	echo "continuous batching: aggregate tg$N tokens/s of N sequences decoding together"
	head="| type    |"
	sep="| ------- |"
	for c in ${C//,/ }; do
		head+=" $(printf '%14s' "N=$c") |"
		sep+=" -------------- |"
	done
	echo "$head"
	echo "$sep"
	printf '%s\n' "${crows[@]}"
fi
