//go:build amd64 && !purego

#include "textflag.h"

// AVX2 versions of the 32-value block dot products. VPMADDUBSW cannot
// saturate here: the unsigned operand is at most 128 and |signed| <= 127.
#define DOTU8S8(u, s, acc, tmp) \
	VPMADDUBSW s, u, tmp; \
	VPMADDWD   Y13, tmp, tmp; \
	VPADDD     tmp, acc, acc
#define Q4_0NAME ·dotQ4_0AVX2
#define Q8_0NAME ·dotQ8_0AVX2

#include "dotq_body_amd64.h"
#include "dotq2_body_amd64.h"

DOTFUNC(·dotQ4_1AVX2, Q4_1BLOCK, 20, 0x3f800000)
DOTFUNC(·dotQ5_0AVX2, Q5_0BLOCK, 22, 0xc1800000)
DOTFUNC(·dotQ5_1AVX2, Q5_1BLOCK, 24, 0x3f800000)
DOTFUNC(·dotIQ4_NLAVX2, IQ4_NLBLOCK, 18, 0)

DATA bitMasks<>+0(SB)/8, $0x8040201008040201
DATA bitMasks<>+8(SB)/8, $0x8040201008040201
DATA bitMasks<>+16(SB)/8, $0x8040201008040201
DATA bitMasks<>+24(SB)/8, $0x8040201008040201
GLOBL bitMasks<>(SB), RODATA|NOPTR, $32
DATA bitBytes<>+0(SB)/8, $0x0000000000000000
DATA bitBytes<>+8(SB)/8, $0x0101010101010101
DATA bitBytes<>+16(SB)/8, $0x0202020202020202
DATA bitBytes<>+24(SB)/8, $0x0303030303030303
GLOBL bitBytes<>(SB), RODATA|NOPTR, $32
DATA iq4nlTable<>+0(SB)/8, $0xf6eaddcfbfad9881
DATA iq4nlTable<>+8(SB)/8, $0x7159453526190d01
GLOBL iq4nlTable<>(SB), RODATA|NOPTR, $16
