package model

import (
	"fmt"
	"math"

	"github.com/foretoken/foretoken/gguf/ggml"
	"github.com/foretoken/foretoken/inference/kernels"
	"github.com/viterin/vek/vek32"
)

// step runs the transformer over tokens, which belong to seqs: the rows
// [s.first, s.first+s.count) of tokens are sequence s's, at its positions
// s.n, s.n+1, ... It appends their keys and values to the caches, advances
// the sequences and fills their outputs. m.mu is held.
func (m *Model) step(seqs []*Sequence, tokens []int32) {
	c, w, s := &m.Config, m.w, m.s
	n := len(tokens)
	dim, half := c.Dim, c.RopeDim/2
	qDim, kDim, vDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.KVHeads*c.ValueDim

	for i, sq := range seqs {
		for j := range sq.count {
			r := sq.first + j
			s.rowSeq[r] = int32(i)
			s.rowPos[r] = int32(sq.n + j)
		}
		for t := range s.scores {
			if need := c.Heads / c.KVHeads * sq.vCols; cap(s.scores[t]) < need {
				s.scores[t] = make([]float32, need)
				// Size the input for the longest scores now, not a little
				// more at every decoded token.
				s.attnIn[t].Prepare(sq.ctype.ggmlType(), s.scores[t], c.Heads/c.KVHeads, sq.vCols)
			}
		}
	}

	// Token embeddings: only the looked-up rows are dequantized.
	for r, t := range tokens {
		if err := ggml.Dequantize(w.tokEmbd.Type, w.tokEmbd.row(int(t)), s.x[r*dim:(r+1)*dim]); err != nil {
			panic(fmt.Sprintf("model: embedding of token %d: %v", t, err)) // shapes were validated at load
		}
		ropeTables(s.cos[r*half:(r+1)*half], s.sin[r*half:(r+1)*half], int(s.rowPos[r]), c.RopeScale, c.RopeBase, w.ropeFreqs)
	}

	for l := range w.layers {
		ly := &w.layers[l]

		// Attention block.
		for r := range n {
			rmsNorm(s.xb[r*dim:(r+1)*dim], s.x[r*dim:(r+1)*dim], ly.attnNorm, c.NormEps)
		}
		m.matmul(s.xb, n, mj(s.q, &ly.wq), mj(s.k, &ly.wk), mj(s.v, &ly.wv))
		for r := range n {
			q, k, v := s.q[r*qDim:(r+1)*qDim], s.k[r*kDim:(r+1)*kDim], s.v[r*vDim:(r+1)*vDim]
			if ly.bq != nil {
				add(q, ly.bq)
				add(k, ly.bk)
				add(v, ly.bv)
			}
			cos, sin := s.cos[r*half:(r+1)*half], s.sin[r*half:(r+1)*half]
			for h := range c.Heads {
				rope(q[h*c.HeadDim:], cos, sin, c.RopeMode)
			}
			for h := range c.KVHeads {
				rope(k[h*c.HeadDim:], cos, sin, c.RopeMode)
			}
			sq := seqs[s.rowSeq[r]]
			sq.store(l, int(s.rowPos[r]), k, v, r == sq.first+sq.count-1)
		}
		at := &s.attn
		at.m, at.seqs, at.layer = m, seqs, l
		m.pool.run(at, n*c.KVHeads)
		at.seqs = nil
		m.matmul(s.att, n, mj(s.tmp, &ly.wo))
		add(s.x[:n*dim], s.tmp[:n*dim])

		// Feed-forward block: SwiGLU.
		for r := range n {
			rmsNorm(s.xb[r*dim:(r+1)*dim], s.x[r*dim:(r+1)*dim], ly.ffnNorm, c.NormEps)
		}
		m.matmul(s.xb, n, mj(s.gate, &ly.wGate), mj(s.up, &ly.wUp))
		swiglu(s.gate[:n*c.FFN], s.up[:n*c.FFN], s.act[:])
		m.matmul(s.gate, n, mj(s.tmp, &ly.wDown))
		add(s.x[:n*dim], s.tmp[:n*dim])

		for _, sq := range seqs {
			if sq.opts.LayerStates && sq.lastStep() {
				r := sq.first + sq.count - 1
				copy(sq.out.Layers[l], s.x[r*dim:(r+1)*dim])
			}
		}
	}

	// Final norm, then the output projection for the rows asked for.
	rows := s.outRows[:0]
	for _, sq := range seqs {
		if sq.opts.Hidden {
			for j := range sq.count {
				r := sq.first + j
				rmsNorm(sq.out.Hidden[(sq.fed+j)*dim:(sq.fed+j+1)*dim], s.x[r*dim:(r+1)*dim], w.outNorm, c.NormEps)
			}
		}
		switch {
		case sq.opts.Logits == LogitsAll:
			for j := range sq.count {
				rows = append(rows, int32(sq.first+j))
			}
		case sq.opts.Logits == LogitsLast && sq.lastStep():
			rows = append(rows, int32(sq.first+sq.count-1))
		}
	}
	s.outRows = rows
	if len(rows) > 0 {
		for i, r := range rows {
			rmsNorm(s.xb[i*dim:(i+1)*dim], s.x[int(r)*dim:int(r+1)*dim], w.outNorm, c.NormEps)
		}
		s.logits = grow(s.logits, len(rows)*c.Vocab)
		m.matmul(s.xb, len(rows), mj(s.logits, &w.output))
		i := 0
		for _, sq := range seqs {
			switch {
			case sq.opts.Logits == LogitsAll:
				copy(sq.out.Logits[sq.fed*c.Vocab:], s.logits[i*c.Vocab:(i+sq.count)*c.Vocab])
				i += sq.count
			case sq.opts.Logits == LogitsLast && sq.lastStep():
				copy(sq.out.Logits, s.logits[i*c.Vocab:(i+1)*c.Vocab])
				i++
			}
		}
	}

	for _, sq := range seqs {
		sq.n += sq.count
		sq.fed += sq.count
	}
}

// store writes the keys and values of one position of layer l into the
// cache, in the layout described at Sequence; last says it is the
// sequence's last position of the step.
func (s *Sequence) store(l, pos int, k, v []float32, last bool) {
	c := &s.m.Config
	hd, vd, n := c.HeadDim, c.ValueDim, s.ctxLen
	if s.ctype == CacheQ8_0 {
		s.storeQ8(l, pos, k, v, last)
		return
	}
	for h := range c.KVHeads {
		kdst := (h*n + pos) * hd
		vdst := h*vd*n + pos
		if s.ctype == CacheF32 {
			copy(s.k32[l][kdst:kdst+hd], k[h*hd:(h+1)*hd])
			for d, x := range v[h*vd : (h+1)*vd] {
				s.v32[l][vdst+d*n] = x
			}
		} else {
			kernels.F32ToF16(s.k16[l][kdst:kdst+hd], k[h*hd:(h+1)*hd])
			for d, x := range v[h*vd : (h+1)*vd] {
				s.v16[l][vdst+d*n] = ggml.Float32ToFP16(x)
			}
		}
	}
}

// storeQ8 is store for a Q8_0 cache: a key row is quantized once; a value
// goes into its row's tail, whose block is quantized when it is full or
// the step's last position is in it (attention runs after all the stores
// of a step).
func (s *Sequence) storeQ8(l, pos int, k, v []float32, last bool) {
	c := &s.m.Config
	kRow := q8Bytes(c.HeadDim)
	for h := range c.KVHeads {
		off := (h*s.ctxLen + pos) * kRow
		quantQ8(k[h*c.HeadDim:(h+1)*c.HeadDim], s.kb[l][off:off+kRow])
	}
	tails := s.vTail[l]
	j := pos % q8Block
	if j == 0 {
		clear(tails)
	}
	for row, x := range v[:c.KVHeads*c.ValueDim] {
		tails[row*q8Block+j] = x
	}
	if j != q8Block-1 && !last {
		return
	}
	vRow, boff := q8Bytes(s.vCols), pos/q8Block*q8BlockBytes
	for row := range c.KVHeads * c.ValueDim {
		off := row*vRow + boff
		quantQ8(tails[row*q8Block:(row+1)*q8Block], s.vb[l][off:off+q8BlockBytes])
	}
}

func quantQ8(src []float32, dst []byte) {
	if err := ggml.Quantize(ggml.Q8_0, src, dst); err != nil {
		panic(fmt.Sprintf("model: q8_0 cache: %v", err)) // sizes are fixed at NewSequence
	}
}

// lastStep reports whether the current step feeds the sequence's last
// position of its Forward.
func (s *Sequence) lastStep() bool { return s.fed+s.count == s.total }

// Project applies the final norm and the output projection to rows hidden
// states (one after another in hidden, rows*Dim values) and writes rows*Vocab
// logits into dst: the logit lens, applied to a layer's residual stream.
func (m *Model) Project(dst, hidden []float32) error {
	c := &m.Config
	if len(hidden)%c.Dim != 0 || len(hidden) == 0 {
		return fmt.Errorf("project: %d values is not a whole number of rows of %d", len(hidden), c.Dim)
	}
	rows := len(hidden) / c.Dim
	if rows > m.opts.BatchSize {
		return fmt.Errorf("project: %d rows exceed the batch size %d", rows, m.opts.BatchSize)
	}
	if len(dst) < rows*c.Vocab {
		return fmt.Errorf("project: %d values of room for %d rows of %d logits", len(dst), rows, c.Vocab)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pool == nil {
		return fmt.Errorf("project: model is closed")
	}
	s := m.s
	for r := range rows {
		rmsNorm(s.xb[r*c.Dim:(r+1)*c.Dim], hidden[r*c.Dim:(r+1)*c.Dim], m.w.outNorm, c.NormEps)
	}
	m.matmul(s.xb, rows, mj(dst, &m.w.output))
	return nil
}

// matJob is one matrix product: dst[t*w.Rows + r] = w[r] · x[t].
type matJob struct {
	dst    []float32
	w      *matrix
	in     *kernels.Input  // the activations; with toks, only its form counts (Fits)
	toks   []kernels.Input // a few tokens: one input each (see smallBatch)
	per    int             // rows per chunk
	chunks int
}

// smallBatch is the most tokens a product takes one token at a time over
// blocks of weight rows small enough to stay in the core's cache: the
// kernels' tiles unpack the weights once per call, which pays only for
// more tokens. So a decode step of a few sequences reads the weights from
// memory once. Measured on a TinyLlama-shape model, 2 threads, aggregate
// tokens/s of N sequences: Q4_0 per token 54/67/71 (N=2/4/8) against
// tiles 22/41/67; Q4_K per token 48/56/59 against tiles 40/67/88.
const smallBatch = 8

// perToken reports whether a product of ntok tokens with weights of type
// wt and rows of cols values goes one token at a time (see smallBatch).
// Types of one activation form (kernels.Input.Fits) must answer alike for
// the same cols: they share inputs.
func perToken(wt ggml.Type, cols, ntok int) bool {
	if ntok < 2 || ntok > smallBatch {
		return false
	}
	switch wt {
	case ggml.Q4_0, ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.Q8_0, ggml.IQ4_NL:
		return true
	}
	// The K-quants, IQ4_XS and float weights: the tiles win from 4 tokens
	// when the kernels unpack the rows in assembly, which takes whole
	// 512-value chunks (on llama256, rows of 256, tiles of 4 tokens were
	// 3.6 times slower than per-token products).
	return ntok <= 3 || cols%512 != 0
}

// subBlockBytes bounds the weight rows a token pass covers before the next
// token's pass over the same rows: well inside a core's L2.
const subBlockBytes = 256 << 10

func mj(dst []float32, w *matrix) matJob { return matJob{dst: dst, w: w} }

// matTask runs up to three products of the same input in one hand-over to
// the workers (Q, K and V; gate and up); its items are chunks of rows.
type matTask struct {
	jobs  [3]matJob
	total int
}

func (t *matTask) do(_, c int) {
	j := 0
	for c >= t.jobs[j].chunks {
		c -= t.jobs[j].chunks
		j++
	}
	jb := &t.jobs[j]
	r0 := c * jb.per
	r1 := min(r0+jb.per, jb.w.Rows)
	w := jb.w
	if jb.toks == nil {
		kernels.MatMulRows(jb.dst, w.Rows, w.Type, w.Data, w.Cols, jb.in, r0, r1)
		return
	}
	sub := max(subBlockBytes/max(w.rowBytes, 1), 4)
	for b0 := r0; b0 < r1; b0 += sub {
		b1 := min(b0+sub, r1)
		for i := range jb.toks {
			kernels.MatMulRows(jb.dst[i*w.Rows:], w.Rows, w.Type, w.Data, w.Cols, &jb.toks[i], b0, b1)
		}
	}
}

// matmul multiplies the ntok rows of x with each job's weights. The input
// is converted once per activation form the weights need.
func (m *Model) matmul(x []float32, ntok int, jobs ...matJob) {
	s := m.s
	t := &s.mat
	// forms[k] is the k-th activation form prepared so far; for products
	// taken one token at a time it is the first token's input.
	var forms [3]*kernels.Input
	ins := [3]*kernels.Input{&s.inA, &s.inB, &s.inC}
	used := 0
	t.total = 0
	for i, jb := range jobs {
		cols := jb.w.Cols
		small := perToken(jb.w.Type, cols, ntok)
		for k, in := range forms[:used] {
			if in.Fits(jb.w.Type) {
				jb.in = in
				if small {
					jb.toks = s.tokIn[k*smallBatch : k*smallBatch+ntok]
				}
				break
			}
		}
		if jb.in == nil {
			if small {
				jb.toks = s.tokIn[used*smallBatch : used*smallBatch+ntok]
				for t := range jb.toks {
					jb.toks[t].Prepare(jb.w.Type, x[t*cols:(t+1)*cols], 1, cols)
				}
				jb.in = &jb.toks[0]
			} else {
				jb.in = ins[used]
				jb.in.Prepare(jb.w.Type, x, ntok, cols)
			}
			forms[used] = jb.in
			used++
		}
		// A few chunks per thread balance the load when other work
		// competes for the cores, without making chunks tiny.
		target := 1
		if m.opts.Threads > 1 {
			target = 4 * m.opts.Threads
		}
		jb.per = max((jb.w.Rows+target-1)/target, 8)
		jb.chunks = (jb.w.Rows + jb.per - 1) / jb.per
		t.jobs[i] = jb
		t.total += jb.chunks
	}
	m.pool.run(t, t.total)
	for i := range t.jobs {
		t.jobs[i] = matJob{}
	}
}

// attnTask computes causal grouped-query attention of one layer. Its items
// are (position, KV head) pairs: the query heads sharing a KV head are the
// tokens of two matrix products over the cache, scores = K·q and then
// out = Vᵀ·softmax(scores).
type attnTask struct {
	m     *Model
	seqs  []*Sequence
	layer int
}

func (t *attnTask) do(worker, item int) {
	m := t.m
	c, s := &m.Config, m.s
	hd, vd := c.HeadDim, c.ValueDim
	group := c.Heads / c.KVHeads
	r, kvh := item/c.KVHeads, item%c.KVHeads
	sq, pos := t.seqs[s.rowSeq[r]], int(s.rowPos[r])
	n := pos + 1
	wt := sq.ctype.ggmlType()
	// A Q8_0 value row is read in whole blocks: the scores past n are 0.
	cols := n
	if sq.ctype == CacheQ8_0 {
		cols = (n + q8Block - 1) / q8Block * q8Block
	}

	q := s.q[r*c.Heads*hd+kvh*group*hd : r*c.Heads*hd+(kvh+1)*group*hd]
	in := &s.attnIn[worker]
	in.Prepare(wt, q, group, hd)
	scores := s.scores[worker][:group*cols]
	kRow := sq.ctype.rowBytes(hd)
	keys := sq.kb[t.layer][kvh*sq.ctxLen*kRow : (kvh*sq.ctxLen+n)*kRow]
	kernels.MatMulRows(scores, cols, wt, keys, hd, in, 0, n)
	scale := float32(1 / math.Sqrt(float64(hd)))
	record := sq.opts.Attention && sq.lastStep() && r == sq.first+sq.count-1
	for g := range group {
		sc := scores[g*cols : g*cols+n]
		vek32.MulNumber_Inplace(sc, scale)
		softmax(sc)
		clear(scores[g*cols+n : (g+1)*cols])
		if record {
			copy(sq.out.Attention[t.layer][kvh*group+g], sc)
		}
	}

	// One product over all the value rows of the head: each row is one
	// value dimension across positions, vRow bytes apart.
	in.Prepare(wt, scores, group, cols)
	out := s.att[r*c.Heads*vd+kvh*group*vd : r*c.Heads*vd+(kvh+1)*group*vd]
	vRow := sq.ctype.rowBytes(sq.vCols)
	kernels.MatMulRowsStride(out, vd, wt, sq.vb[t.layer][kvh*vd*vRow:], cols, vRow, in, 0, vd)
}
