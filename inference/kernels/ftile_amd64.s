//go:build amd64 && !purego

#include "textflag.h"

// Batched float kernel (AVX-512): 4 rows of float32 weights, interleaved
// 16 values of each row in turn ([chunk][4 rows][16]), times tokens taken
// four at a time so that every row load feeds four FMAs.

// REDUCE4 sums each of Z(a)..Z(a+3) and stores the four results at off(BX).
#define REDUCE4(A, B, C, D, YA, YB, YC, YD, XA, XT, off) \
	VEXTRACTF64X4 $1, A, Y24; \
	VADDPS        Y24, YA, YA; \
	VEXTRACTF64X4 $1, B, Y24; \
	VADDPS        Y24, YB, YB; \
	VEXTRACTF64X4 $1, C, Y24; \
	VADDPS        Y24, YC, YC; \
	VEXTRACTF64X4 $1, D, Y24; \
	VADDPS        Y24, YD, YD; \
	VHADDPS       YB, YA, YA; \
	VHADDPS       YD, YC, YC; \
	VHADDPS       YC, YA, YA; \
	VEXTRACTF128  $1, YA, XT; \
	VADDPS        XT, XA, XA; \
	VMOVUPS       XA, off(BX)

// ROWQ multiplies row r (at off(SI)) with the four tokens Z16..Z19.
#define ROWQ(off, A0, A1, A2, A3) \
	VMOVUPS     off(SI), Z20; \
	VFMADD231PS Z20, Z16, A0; \
	VFMADD231PS Z20, Z17, A1; \
	VFMADD231PS Z20, Z18, A2; \
	VFMADD231PS Z20, Z19, A3

// func ftileAVX512(w *float32, nchunk int, x *float32, xstride int, nquad int, out *float32)
// Tokens go four at a time; x rows are xstride bytes apart; out gets 16
// floats per quad, 4 rows for each token in turn.
TEXT ·ftileAVX512(SB), NOSPLIT, $0-48
	MOVQ  x+16(FP), DI
	MOVQ  xstride+24(FP), R10
	MOVQ  nquad+32(FP), CX
	MOVQ  out+40(FP), BX
	TESTQ CX, CX
	JZ    done

quad:
	MOVQ   w+0(FP), SI
	MOVQ   nchunk+8(FP), DX
	MOVQ   DI, R11
	LEAQ   (DI)(R10*1), R12
	LEAQ   (R12)(R10*1), R13
	LEAQ   (R13)(R10*1), R14
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

chunk:
	VMOVUPS (R11), Z16
	VMOVUPS (R12), Z17
	VMOVUPS (R13), Z18
	VMOVUPS (R14), Z19
	// accumulator of token t, row r: Z(4t+r)
	ROWQ(0, Z0, Z4, Z8, Z12)
	ROWQ(64, Z1, Z5, Z9, Z13)
	ROWQ(128, Z2, Z6, Z10, Z14)
	ROWQ(192, Z3, Z7, Z11, Z15)
	ADDQ    $256, SI
	ADDQ    $64, R11
	ADDQ    $64, R12
	ADDQ    $64, R13
	ADDQ    $64, R14
	DECQ    DX
	JNZ     chunk

	REDUCE4(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3, X0, X1, 0)
	REDUCE4(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7, X4, X5, 16)
	REDUCE4(Z8, Z9, Z10, Z11, Y8, Y9, Y10, Y11, X8, X9, 32)
	REDUCE4(Z12, Z13, Z14, Z15, Y12, Y13, Y14, Y15, X12, X13, 48)

	LEAQ (DI)(R10*4), DI
	ADDQ $64, BX
	DECQ CX
	JNZ  quad

done:
	VZEROUPPER
	RET

// func unpackF16AVX512(w *byte, nchunk int, dst *float32)
// Widens a row of fp16 into its slot: 16 floats every 256 bytes.
TEXT ·unpackF16AVX512(SB), NOSPLIT, $0-24
	MOVQ  w+0(FP), SI
	MOVQ  nchunk+8(FP), CX
	MOVQ  dst+16(FP), DI
	TESTQ CX, CX
	JZ    f16done

f16loop:
	VCVTPH2PS (SI), Z0
	VMOVUPS   Z0, (DI)
	ADDQ      $32, SI
	ADDQ      $256, DI
	DECQ      CX
	JNZ       f16loop

f16done:
	VZEROUPPER
	RET

// func unpackBF16AVX512(w *byte, nchunk int, dst *float32)
TEXT ·unpackBF16AVX512(SB), NOSPLIT, $0-24
	MOVQ  w+0(FP), SI
	MOVQ  nchunk+8(FP), CX
	MOVQ  dst+16(FP), DI
	TESTQ CX, CX
	JZ    bf16done

bf16loop:
	VPMOVZXWD (SI), Z0
	VPSLLD    $16, Z0, Z0
	VMOVUPS   Z0, (DI)
	ADDQ      $32, SI
	ADDQ      $256, DI
	DECQ      CX
	JNZ       bf16loop

bf16done:
	VZEROUPPER
	RET

// func unpackF32AVX512(w *byte, nchunk int, dst *float32)
TEXT ·unpackF32AVX512(SB), NOSPLIT, $0-24
	MOVQ  w+0(FP), SI
	MOVQ  nchunk+8(FP), CX
	MOVQ  dst+16(FP), DI
	TESTQ CX, CX
	JZ    f32done

f32loop:
	VMOVUPS (SI), Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $256, DI
	DECQ    CX
	JNZ     f32loop

f32done:
	VZEROUPPER
	RET
