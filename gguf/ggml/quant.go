package ggml

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The quantizers below follow ggml's reference quantizers
// (quantize_row_*_ref, and quantize_row_iq4_nl_impl without an importance
// matrix), which is what llama-quantize runs when no imatrix is given. The
// float32 arithmetic is written in the same order so that our files match
// llama.cpp's block for block in all but rare rounding ties.

// groupMaxEps is ggml's GROUP_MAX_EPS: a group below it is all zeros.
const groupMaxEps = 1e-15

// CanQuantize reports whether Quantize supports t.
func CanQuantize(t Type) bool {
	switch t {
	case F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS:
		return true
	}
	return false
}

// Quantize converts the float32 values in src into blocks of type t in dst.
// len(src) must be a whole number of blocks and len(dst) exactly their size.
func Quantize(t Type, src []float32, dst []byte) error {
	l, ok := layouts[t]
	if !ok {
		return fmt.Errorf("quantize: unknown tensor type %d", uint32(t))
	}
	if !CanQuantize(t) {
		return fmt.Errorf("quantize: type %s is not supported", l.name)
	}
	if len(src)%l.blockSize != 0 {
		return fmt.Errorf("quantize %s: %d values is not a whole number of blocks of %d", l.name, len(src), l.blockSize)
	}
	nb := len(src) / l.blockSize
	if len(dst) != nb*l.typeSize {
		return fmt.Errorf("quantize %s: %d values need %d bytes, got %d", l.name, len(src), nb*l.typeSize, len(dst))
	}
	var fn func(x []float32, b []byte)
	switch t {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
		return nil
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToFP16(v))
		}
		return nil
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBF16(v))
		}
		return nil
	case Q4_0:
		fn = quantQ4_0
	case Q4_1:
		fn = quantQ4_1
	case Q5_0:
		fn = quantQ5_0
	case Q5_1:
		fn = quantQ5_1
	case Q8_0:
		fn = quantQ8_0
	case Q2_K:
		fn = quantQ2_K
	case Q3_K:
		fn = quantQ3_K
	case Q4_K:
		fn = quantQ4_K
	case Q5_K:
		fn = quantQ5_K
	case Q6_K:
		fn = quantQ6_K
	case Q8_K:
		fn = quantQ8_K
	case IQ4_NL:
		fn = quantIQ4_NL
	case IQ4_XS:
		fn = quantIQ4_XS
	}
	for i := 0; i < nb; i++ {
		fn(src[i*l.blockSize:(i+1)*l.blockSize], dst[i*l.typeSize:(i+1)*l.typeSize])
	}
	return nil
}

func putFP16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, Float32ToFP16(f)) }

// nearestInt rounds to the nearest integer, ties to even, with ggml's trick
// of adding 1.5*2^23 and reading the mantissa. Valid for |f| <= 4194303.
func nearestInt(f float32) int {
	v := f + 12582912
	return int(math.Float32bits(v)&0x007fffff) - 0x00400000
}

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// absMax returns the value of largest magnitude (the first one on ties) and
// its magnitude.
func absMax(x []float32) (xmax, amax float32) {
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, xmax = a, v
		}
	}
	return xmax, amax
}

func quantQ8_0(x []float32, b []byte) {
	var amax float32
	for _, v := range x[:32] {
		if a := abs32(v); a > amax {
			amax = a
		}
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putFP16(b, d)
	for j, v := range x[:32] {
		b[2+j] = byte(int8(math.Round(float64(v * id))))
	}
}

func quantQ4_0(x []float32, b []byte) {
	xmax, _ := absMax(x[:32])
	d := xmax / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putFP16(b, d)
	for j := 0; j < 16; j++ {
		x0 := x[j] * id
		x1 := x[16+j] * id
		b[2+j] = byte(min(15, int8(x0+8.5))) | byte(min(15, int8(x1+8.5)))<<4
	}
}

// minMax returns the smallest and largest of x.
func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

func quantQ4_1(x []float32, b []byte) {
	lo, hi := minMax(x[:32])
	d := (hi - lo) / 15
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putFP16(b, d)
	putFP16(b[2:], lo)
	for j := 0; j < 16; j++ {
		x0 := (x[j] - lo) * id
		x1 := (x[16+j] - lo) * id
		b[4+j] = byte(min(15, int8(x0+0.5))) | byte(min(15, int8(x1+0.5)))<<4
	}
}

func quantQ5_0(x []float32, b []byte) {
	xmax, _ := absMax(x[:32])
	d := xmax / -16
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putFP16(b, d)
	var qh uint32
	for j := 0; j < 16; j++ {
		x0 := x[j] * id
		x1 := x[16+j] * id
		xi0 := byte(min(31, int8(x0+16.5)))
		xi1 := byte(min(31, int8(x1+16.5)))
		b[6+j] = xi0&0x0f | (xi1&0x0f)<<4
		qh |= uint32(xi0&0x10) >> 4 << uint(j)
		qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
	}
	binary.LittleEndian.PutUint32(b[2:], qh)
}

func quantQ5_1(x []float32, b []byte) {
	lo, hi := minMax(x[:32])
	d := (hi - lo) / 31
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putFP16(b, d)
	putFP16(b[2:], lo)
	var qh uint32
	for j := 0; j < 16; j++ {
		x0 := (x[j] - lo) * id
		x1 := (x[16+j] - lo) * id
		xi0 := byte(x0 + 0.5)
		xi1 := byte(x1 + 0.5)
		b[8+j] = xi0&0x0f | (xi1&0x0f)<<4
		qh |= uint32(xi0&0x10) >> 4 << uint(j)
		qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
	}
	binary.LittleEndian.PutUint32(b[4:], qh)
}

// makeQXQuants is ggml's make_qx_quants with rmse_type 1 (weights x²) and no
// importance weights: it picks the signed scale, among 19 candidates, that
// minimizes the weighted squared error of levels in [-nmax, nmax-1]; L gets
// the levels offset by nmax.
func makeQXQuants(nmax int, x []float32, L []int8) float32 {
	xmax, amax := absMax(x)
	if amax < groupMaxEps {
		for i := range x {
			L[i] = 0
		}
		return 0
	}
	fnmax := float32(nmax)
	iscale := -fnmax / xmax
	var sumlx, suml2 float32
	for i, v := range x {
		l := max(-nmax, min(nmax-1, nearestInt(iscale*v)))
		L[i] = int8(l + nmax)
		w := v * v
		sumlx += w * v * float32(l)
		suml2 += w * float32(l) * float32(l)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := scale * sumlx
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fnmax + 0.1*float32(is)) / xmax
		sumlx, suml2 = 0, 0
		for _, v := range x {
			l := max(-nmax, min(nmax-1, nearestInt(iscale*v)))
			w := v * v
			sumlx += w * v * float32(l)
			suml2 += w * float32(l) * float32(l)
		}
		if suml2 > 0 && sumlx*sumlx > best*suml2 {
			for i, v := range x {
				L[i] = int8(nmax + max(-nmax, min(nmax-1, nearestInt(iscale*v))))
			}
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

// makeQ3Quants is ggml's make_q3_quants with do_rmse: start from the
// max-scaled levels, then move single levels while that improves the
// x²-weighted fit, for at most five passes.
func makeQ3Quants(nmax int, x []float32, L []int8) float32 {
	xmax, amax := absMax(x)
	if amax < groupMaxEps {
		for i := range x {
			L[i] = 0
		}
		return 0
	}
	iscale := -float32(nmax) / xmax
	var sumlx, suml2 float32
	for i, v := range x {
		l := max(-nmax, min(nmax-1, nearestInt(iscale*v)))
		L[i] = int8(l)
		w := v * v
		sumlx += w * v * float32(l)
		suml2 += w * float32(l) * float32(l)
	}
	for itry := 0; itry < 5; itry++ {
		changed := 0
		for i, v := range x {
			w := v * v
			slx := sumlx - w*v*float32(L[i])
			if slx > 0 {
				sl2 := suml2 - w*float32(L[i])*float32(L[i])
				nl := max(-nmax, min(nmax-1, nearestInt(v*sl2/slx)))
				if nl != int(L[i]) {
					slx += w * v * float32(nl)
					sl2 += w * float32(nl) * float32(nl)
					if sl2 > 0 && slx*slx*suml2 > sumlx*sumlx*sl2 {
						L[i] = int8(nl)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range x {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// makeQKX2Quants is ggml's make_qkx2_quants: an asymmetric fit x ≈ scale*L -
// min with L in [0, nmax], searching nstep+1 candidate scales around the
// range and solving weighted least squares for each. It returns the scale
// and the (non-negative) min.
func makeQKX2Quants(nmax int, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	n := len(x)
	weights, L, Laux = weights[:n], L[:n], Laux[:n] // lets the compiler drop bounds checks
	lo, hi := x[0], x[0]
	sumW := weights[0]
	sumX := sumW * x[0]
	for i := 1; i < n; i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += w * x[i]
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		for i := range x {
			L[i] = 0
		}
		return 0, -lo
	}
	fnmax := float32(nmax)
	iscale := fnmax / (hi - lo)
	scale = 1 / iscale
	var bestErr float32
	for i, v := range x {
		l := max(0, min(nmax, nearestInt(iscale*(v-lo))))
		L[i] = uint8(l)
		diff := scale*float32(l) + lo - v
		if useMAD {
			diff = abs32(diff)
		} else {
			diff *= diff
		}
		bestErr += weights[i] * diff
	}
	if nstep < 1 {
		return scale, -lo
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + rdelta*float32(is) + fnmax) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := max(0, min(nmax, nearestInt(iscale*(v-lo))))
			Laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += w * fl
			sumL2 += w * fl * fl
			sumXL += w * fl * v
		}
		D := sumW*sumL2 - sumL*sumL
		if D > 0 {
			thisScale := (sumW*sumXL - sumX*sumL) / D
			thisMin := (sumL2*sumX - sumL*sumXL) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curErr float32
			for i, v := range x {
				diff := thisScale*float32(Laux[i]) + thisMin - v
				if useMAD {
					diff = abs32(diff)
				} else {
					diff *= diff
				}
				curErr += weights[i] * diff
			}
			if curErr < bestErr {
				copy(L[:n], Laux[:n])
				bestErr = curErr
				scale = thisScale
				lo = thisMin
			}
		}
	}
	return scale, -lo
}

// block_q2_K: scales[16], qs[64], d, dmin.
func quantQ2_K(x []float32, b []byte) {
	var L [256]uint8
	var Laux [16]uint8
	var weights [16]float32
	var mins, scales [16]float32
	const q4scale = 15
	var maxScale, maxMin float32
	for j := 0; j < 16; j++ {
		xx := x[16*j : 16*j+16]
		for l, v := range xx {
			weights[l] = abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(3, xx, weights[:], L[16*j:16*j+16], Laux[:], -0.5, 0.1, 15, true)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	sc := b[0:16]
	if maxScale > 0 {
		iscale := q4scale / maxScale
		for j := range 16 {
			sc[j] = uint8(nearestInt(iscale * scales[j]))
		}
		putFP16(b[80:], maxScale/q4scale)
	} else {
		clear(sc)
		putFP16(b[80:], 0)
	}
	if maxMin > 0 {
		iscale := q4scale / maxMin
		for j := range 16 {
			sc[j] |= uint8(nearestInt(iscale*mins[j]) << 4)
		}
		putFP16(b[82:], maxMin/q4scale)
	} else {
		putFP16(b[82:], 0)
	}
	dAll, mAll := fp16At(b[80:]), fp16At(b[82:])
	for j := 0; j < 16; j++ {
		d := dAll * float32(sc[j]&0xf)
		if d == 0 {
			continue
		}
		dm := mAll * float32(sc[j]>>4)
		for ii := 0; ii < 16; ii++ {
			L[16*j+ii] = uint8(max(0, min(3, nearestInt((x[16*j+ii]+dm)/d))))
		}
	}
	qs := b[16:80]
	for j := 0; j < 256; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// block_q3_K: hmask[32], qs[64], scales[12], d.
func quantQ3_K(x []float32, b []byte) {
	var L [256]int8
	var scales [16]float32
	var maxScale, amax float32
	for j := 0; j < 16; j++ {
		scales[j] = makeQ3Quants(4, x[16*j:16*j+16], L[16*j:16*j+16])
		if s := abs32(scales[j]); s > amax {
			amax, maxScale = s, scales[j]
		}
	}
	hmask, qs, sb := b[0:32], b[32:96], b[96:108]
	clear(sb)
	if maxScale != 0 {
		iscale := -32 / maxScale
		for j := 0; j < 16; j++ {
			l := int(int8(nearestInt(iscale * scales[j])))
			l = max(-32, min(31, l)) + 32
			if j < 8 {
				sb[j] = uint8(l & 0xf)
			} else {
				sb[j-8] |= uint8(l&0xf) << 4
			}
			l >>= 4
			sb[j%4+8] |= uint8(l << (2 * uint(j/4)))
		}
		putFP16(b[108:], 1/iscale)
	} else {
		putFP16(b[108:], 0)
	}
	dAll := fp16At(b[108:])
	sc := q3KScales(sb)
	for j := 0; j < 16; j++ {
		d := dAll * float32(int(sc[j])-32)
		if d == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			l := max(-4, min(3, nearestInt(x[16*j+ii]/d)))
			L[16*j+ii] = int8(l + 4)
		}
	}
	clear(hmask)
	m, hm := 0, uint8(1)
	for j := 0; j < 256; j++ {
		if L[j] > 3 {
			hmask[m] |= hm
			L[j] -= 4
		}
		if m++; m == 32 {
			m = 0
			hm <<= 1
		}
	}
	for j := 0; j < 256; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = uint8(L[j+l]) | uint8(L[j+l+32])<<2 | uint8(L[j+l+64])<<4 | uint8(L[j+l+96])<<6
		}
	}
}

// quantK4Scales fits the eight 32-value groups of a Q4_K/Q5_K super-block
// with make_qkx2_quants, then packs the 6-bit scales and mins into sb and
// returns the final levels computed against the stored (fp16) scales.
func quantK4Scales(x []float32, b []byte, nmax int, rmin, rdelta float32, nstep int, L *[256]uint8) {
	var Laux [32]uint8
	var weights [32]float32
	var mins, scales [8]float32
	var maxScale, maxMin float32
	for j := 0; j < 8; j++ {
		xx := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xx {
			sumX2 += v * v
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xx {
			weights[l] = avX + abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(nmax, xx, weights[:], L[32*j:32*j+32], Laux[:], rmin, rdelta, nstep, false)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sb := b[4:16]
	for j := 0; j < 8; j++ {
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		if j < 4 {
			sb[j] = ls
			sb[j+4] = lm
		} else {
			sb[j+4] = ls&0xf | (lm&0xf)<<4
			sb[j-4] |= (ls >> 4) << 6
			sb[j] |= (lm >> 4) << 6
		}
	}
	putFP16(b, maxScale/63)
	putFP16(b[2:], maxMin/63)
	dAll, mAll := fp16At(b), fp16At(b[2:])
	for j := 0; j < 8; j++ {
		sc, m := scaleMinK4(j, sb)
		d := dAll * float32(sc)
		if d == 0 {
			continue
		}
		dm := mAll * float32(m)
		for ii := 0; ii < 32; ii++ {
			L[32*j+ii] = uint8(max(0, min(nmax, nearestInt((x[32*j+ii]+dm)/d))))
		}
	}
}

// block_q4_K: d, dmin, scales[12], qs[128].
func quantQ4_K(x []float32, b []byte) {
	var L [256]uint8
	quantK4Scales(x, b, 15, -1, 0.1, 20, &L)
	q := b[16:144]
	for j := 0; j < 256; j += 64 {
		for l := 0; l < 32; l++ {
			q[j/2+l] = L[j+l] | L[j+l+32]<<4
		}
	}
}

// block_q5_K: d, dmin, scales[12], qh[32], qs[128].
func quantQ5_K(x []float32, b []byte) {
	var L [256]uint8
	quantK4Scales(x, b, 31, -0.5, 0.1, 15, &L)
	qh, ql := b[16:48], b[48:176]
	clear(qh)
	m1, m2 := uint8(1), uint8(2)
	for n := 0; n < 256; n += 64 {
		for j := 0; j < 32; j++ {
			l1, l2 := L[n+j], L[n+j+32]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			ql[n/2+j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
	}
}

// block_q6_K: ql[128], qh[64], scales[16] int8, d.
func quantQ6_K(x []float32, b []byte) {
	var L [256]int8
	var scales [16]float32
	var maxScale, maxAbsScale float32
	for ib := 0; ib < 16; ib++ {
		s := makeQXQuants(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16])
		scales[ib] = s
		if a := abs32(s); a > maxAbsScale {
			maxAbsScale, maxScale = a, s
		}
	}
	if maxAbsScale < groupMaxEps {
		clear(b[:210])
		return
	}
	iscale := -128 / maxScale
	putFP16(b[208:], 1/iscale)
	sc := b[192:208]
	for ib := 0; ib < 16; ib++ {
		sc[ib] = uint8(int8(min(127, nearestInt(iscale*scales[ib]))))
	}
	dAll := fp16At(b[208:])
	for j := 0; j < 16; j++ {
		d := dAll * float32(int8(sc[j]))
		if d == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			l := max(-32, min(31, nearestInt(x[16*j+ii]/d)))
			L[16*j+ii] = int8(l + 32)
		}
	}
	ql, qh := b[0:128], b[128:192]
	for j := 0; j < 256; j += 128 {
		for l := 0; l < 32; l++ {
			q1 := uint8(L[j+l]) & 0xf
			q2 := uint8(L[j+l+32]) & 0xf
			q3 := uint8(L[j+l+64]) & 0xf
			q4 := uint8(L[j+l+96]) & 0xf
			ql[j/2+l] = q1 | q3<<4
			ql[j/2+l+32] = q2 | q4<<4
			qh[j/4+l] = uint8(L[j+l])>>4 | (uint8(L[j+l+32])>>4)<<2 | (uint8(L[j+l+64])>>4)<<4 | (uint8(L[j+l+96])>>4)<<6
		}
	}
}

// block_q8_K: d float32, qs[256], bsums[16] (sums of 16 quants each).
func quantQ8_K(x []float32, b []byte) {
	xmax, amax := absMax(x[:256])
	if amax == 0 {
		clear(b[:292])
		return
	}
	iscale := -127 / xmax
	qs := b[4:260]
	for j, v := range x[:256] {
		qs[j] = uint8(int8(min(127, nearestInt(iscale*v))))
	}
	for j := 0; j < 16; j++ {
		sum := 0
		for ii := 0; ii < 16; ii++ {
			sum += int(int8(qs[16*j+ii]))
		}
		binary.LittleEndian.PutUint16(b[260+2*j:], uint16(int16(sum)))
	}
	binary.LittleEndian.PutUint32(b, math.Float32bits(1/iscale))
}

// bestIndexIQ4 returns the codebook index nearest to x (ties go up), as
// ggml's best_index_int8 binary search.
func bestIndexIQ4(x float32) int {
	val := &kvaluesIQ4NL
	if x <= float32(val[0]) {
		return 0
	}
	if x >= float32(val[15]) {
		return 15
	}
	ml, mu := 0, 15
	for mu-ml > 1 {
		mav := (ml + mu) / 2
		if x < float32(val[mav]) {
			mu = mav
		} else {
			ml = mav
		}
	}
	if x-float32(val[mu-1]) < float32(val[mu])-x {
		return mu - 1
	}
	return mu
}

// quantIQ4 is ggml's quantize_row_iq4_nl_impl without importance weights
// (weights x²) and ntry 7, for IQ4_NL (one 32-block) and IQ4_XS (eight
// 32-blocks under one 6-bit scale each). It returns the super-block scale
// and, for IQ4_XS, the packed 6-bit block scales; L gets codebook indices.
func quantIQ4(x []float32, L []uint8) (dh float32, scalesH uint16, scalesL [4]uint8) {
	const ntry = 7
	nblk := len(x) / 32
	var scales [8]float32
	var weight [32]float32
	val := &kvaluesIQ4NL
	var maxScale, amaxScale float32
	for ib := 0; ib < nblk; ib++ {
		xb := x[32*ib : 32*ib+32]
		Lb := L[32*ib : 32*ib+32]
		for j, v := range xb {
			weight[j] = v * v
		}
		xmax, amax := absMax(xb)
		if amax < groupMaxEps {
			scales[ib] = 0
			continue
		}
		d := -xmax / float32(val[0])
		id := 1 / d
		var sumqx, sumq2 float32
		for j, v := range xb {
			l := bestIndexIQ4(id * v)
			Lb[j] = uint8(l)
			q := float32(val[l])
			w := weight[j]
			sumqx += w * q * v
			sumq2 += w * q * q
		}
		d = sumqx / sumq2
		best := d * sumqx
		for itry := -ntry; itry <= ntry; itry++ {
			id = float32(itry+int(val[0])) / xmax
			sumqx, sumq2 = 0, 0
			for j, v := range xb {
				q := float32(val[bestIndexIQ4(id*v)])
				w := weight[j]
				sumqx += w * q * v
				sumq2 += w * q * q
			}
			if sumq2 > 0 && sumqx*sumqx > best*sumq2 {
				d = sumqx / sumq2
				best = d * sumqx
			}
		}
		scales[ib] = d
		if a := abs32(d); a > amaxScale {
			amaxScale, maxScale = a, d
		}
	}
	if nblk == 1 {
		var id float32
		if scales[0] != 0 {
			id = 1 / scales[0]
		}
		for j, v := range x {
			L[j] = uint8(bestIndexIQ4(id * v))
		}
		return scales[0], 0, scalesL
	}
	d := -maxScale / 32
	var id float32
	if d != 0 {
		id = 1 / d
	}
	for ib := 0; ib < nblk; ib++ {
		l := max(-32, min(31, nearestInt(id*scales[ib])))
		dl := d * float32(l)
		var idl float32
		if dl != 0 {
			idl = 1 / dl
		}
		for j, v := range x[32*ib : 32*ib+32] {
			L[32*ib+j] = uint8(bestIndexIQ4(idl * v))
		}
		l += 32
		if ib%2 == 0 {
			scalesL[ib/2] = uint8(l & 0xf)
		} else {
			scalesL[ib/2] |= uint8(l&0xf) << 4
		}
		scalesH |= uint16(l>>4) << (2 * uint(ib%8))
	}
	return d, scalesH, scalesL
}

// packNibbles stores 32-value groups of 4-bit indices the way Q4_0 does.
func packNibbles(L []uint8, q []byte) {
	for i := 0; i < len(L)/32; i++ {
		for j := 0; j < 16; j++ {
			q[16*i+j] = L[32*i+j] | L[32*i+16+j]<<4
		}
	}
}

// block_iq4_nl: d, qs[16].
func quantIQ4_NL(x []float32, b []byte) {
	var L [32]uint8
	d, _, _ := quantIQ4(x[:32], L[:])
	putFP16(b, d)
	packNibbles(L[:], b[2:18])
}

// block_iq4_xs: d, scales_h, scales_l[4], qs[128].
func quantIQ4_XS(x []float32, b []byte) {
	var L [256]uint8
	d, sh, sl := quantIQ4(x[:256], L[:])
	putFP16(b, d)
	binary.LittleEndian.PutUint16(b[2:], sh)
	copy(b[4:8], sl[:])
	packNibbles(L[:], b[8:136])
}
