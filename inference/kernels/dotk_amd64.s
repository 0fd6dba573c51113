//go:build amd64 && !purego

#include "textflag.h"

// K-quant dot products (AVX2 + FMA + F16C). Within a super-block all sums
// are integers: VPMADDUBSW of unsigned quants with int8 activations (at
// most 63*127*2, no saturation) and VPMADDWD with the sub-block scales.
// Register use: SI weights, DI activation int8s, R8 scales, R9 block sums
// (int16, 16 per super-block), CX super-block count.

#define HSUM8(X, Y, TX) \
	VEXTRACTF128 $1, Y, TX; \
	VADDPS       TX, X, X; \
	VPERMILPS    $0x4e, X, TX; \
	VADDPS       TX, X, X; \
	VPERMILPS    $0xb1, X, TX; \
	VADDSS       TX, X, X

#define FP16SCALE(mem, X) \
	MOVWLZX   mem, AX; \
	VMOVD     AX, X; \
	VCVTPH2PS X, X

DATA minPairs<>+0(SB)/8, $0x0b0b0a0a09090808
DATA minPairs<>+8(SB)/8, $0x0f0f0e0e0d0d0c0c
GLOBL minPairs<>(SB), RODATA|NOPTR, $16

// Q4KCHUNK multiplies 64 values: 32 low nibbles (scale word 2j on the
// stack) and 32 high nibbles (scale word 2j+1), adding into Y10.
#define Q4KCHUNK(qoff, aoff, soff) \
	VMOVDQU      qoff(SI), Y0; \
	VPAND        Y15, Y0, Y1; \
	VPSRLW       $4, Y0, Y2; \
	VPAND        Y15, Y2, Y2; \
	VPMADDUBSW   aoff(DI), Y1, Y1; \
	VPMADDUBSW   aoff+32(DI), Y2, Y2; \
	VPBROADCASTW soff(SP), Y3; \
	VPBROADCASTW soff+2(SP), Y4; \
	VPMADDWD     Y3, Y1, Y1; \
	VPMADDWD     Y4, Y2, Y2; \
	VPADDD       Y1, Y10, Y10; \
	VPADDD       Y2, Y10, Y10

// func dotQ4_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32
TEXT ·dotQ4_KAVX2(SB), NOSPLIT, $32-44
	MOVQ         w+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         s+24(FP), R9
	MOVQ         nb+32(FP), CX
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU      minPairs<>(SB), X14
	VXORPS       Y8, Y8, Y8          // sum of d*dy*scaled products
	VXORPS       Y9, Y9, Y9          // sum of dmin*dy*mins
	TESTQ        CX, CX
	JZ           q4kdone

q4kloop:
	// Unpack the 6-bit scales and mins (ggml's kmask shuffle).
	MOVL  4(SI), AX
	MOVL  8(SI), BX
	MOVL  12(SI), DX
	MOVL  DX, R10
	SHRL  $4, R10
	ANDL  $0x0f0f0f0f, R10
	MOVL  BX, R11
	SHRL  $6, R11
	ANDL  $0x03030303, R11
	SHLL  $4, R11
	ORL   R11, R10               // mins 4..7
	ANDL  $0x3f3f3f3f, BX        // mins 0..3
	ANDL  $0x0f0f0f0f, DX
	MOVL  AX, R11
	SHRL  $6, R11
	ANDL  $0x03030303, R11
	SHLL  $4, R11
	ORL   R11, DX                // scales 4..7
	ANDL  $0x3f3f3f3f, AX        // scales 0..3
	VMOVD AX, X0
	VPINSRD $1, DX, X0, X0
	VPINSRD $2, BX, X0, X0
	VPINSRD $3, R10, X0, X0      // bytes: scales 0..7, mins 0..7
	VPMOVZXBW X0, Y1
	VMOVDQU   Y1, (SP)           // words: scales 0..7, mins 0..7

	// Mins times the activation sums of their 32 values.
	VPSHUFB   X14, X0, X1        // m0 m0 m1 m1 ... m7 m7
	VPMOVZXBW X1, Y1
	VPMADDWD  (R9), Y1, Y1
	VCVTDQ2PS Y1, Y1
	FP16SCALE(2(SI), X2)
	VMULSS    (R8), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y1, Y2, Y9

	VPXOR Y10, Y10, Y10
	Q4KCHUNK(16, 0, 0)
	Q4KCHUNK(48, 64, 4)
	Q4KCHUNK(80, 128, 8)
	Q4KCHUNK(112, 192, 12)
	VCVTDQ2PS Y10, Y10
	FP16SCALE(0(SI), X2)
	VMULSS    (R8), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y10, Y2, Y8

	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $4, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  q4kloop

q4kdone:
	VSUBPS Y9, Y8, Y8
	HSUM8(X8, Y8, X1)
	VMOVSS X8, ret+40(FP)
	VZEROUPPER
	RET

// Q6KQUANTS builds the four 32-byte vectors of 6-bit quants of one half
// (ql at qoff(SI), qh at hoff(SI)) in Y0..Y3 (values l, l+32, l+64, l+96).
#define Q6KQUANTS(qoff, hoff) \
	VMOVDQU qoff(SI), Y4; \
	VMOVDQU qoff+32(SI), Y5; \
	VMOVDQU hoff(SI), Y6; \
	VPAND   Y15, Y4, Y0; \
	VPAND   Y15, Y5, Y1; \
	VPSRLW  $4, Y4, Y2; \
	VPAND   Y15, Y2, Y2; \
	VPSRLW  $4, Y5, Y3; \
	VPAND   Y15, Y3, Y3; \
	VPSLLW  $4, Y6, Y7; \
	VPAND   Y14, Y7, Y7; \
	VPOR    Y7, Y0, Y0; \
	VPSLLW  $2, Y6, Y7; \
	VPAND   Y14, Y7, Y7; \
	VPOR    Y7, Y1, Y1; \
	VPAND   Y14, Y6, Y7; \
	VPOR    Y7, Y2, Y2; \
	VPSRLW  $2, Y6, Y7; \
	VPAND   Y14, Y7, Y7; \
	VPOR    Y7, Y3, Y3

// Q6KHALF multiplies the 128 values of one half with activations at
// aoff(DI) and the half's 8 scales at scoff(SI), adding into Y10.
#define Q6KHALF(qoff, hoff, scoff, aoff) \
	Q6KQUANTS(qoff, hoff); \
	VPMOVSXBW    scoff(SI), X4; \
	VINSERTI128  $1, X4, Y4, Y4; \
	VPMADDUBSW   aoff(DI), Y0, Y0; \
	VPMADDUBSW   aoff+32(DI), Y1, Y1; \
	VPMADDUBSW   aoff+64(DI), Y2, Y2; \
	VPMADDUBSW   aoff+96(DI), Y3, Y3; \
	VPSHUFB      q6sel0<>(SB), Y4, Y5; \
	VPMADDWD     Y5, Y0, Y0; \
	VPSHUFB      q6sel1<>(SB), Y4, Y5; \
	VPMADDWD     Y5, Y1, Y1; \
	VPSHUFB      q6sel2<>(SB), Y4, Y5; \
	VPMADDWD     Y5, Y2, Y2; \
	VPSHUFB      q6sel3<>(SB), Y4, Y5; \
	VPMADDWD     Y5, Y3, Y3; \
	VPADDD       Y1, Y0, Y0; \
	VPADDD       Y3, Y2, Y2; \
	VPADDD       Y0, Y10, Y10; \
	VPADDD       Y2, Y10, Y10

// func dotQ6_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32
TEXT ·dotQ6_KAVX2(SB), NOSPLIT, $0-44
	MOVQ         w+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         s+24(FP), R9
	MOVQ         nb+32(FP), CX
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x30303030, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	VXORPS       Y8, Y8, Y8
	TESTQ        CX, CX
	JZ           q6kdone

q6kloop:
	// The quants are stored +32: subtract 32 * sum(scale * group sum).
	VPMOVSXBW 192(SI), Y0
	VPMADDWD  (R9), Y0, Y0
	VPSLLD    $5, Y0, Y0
	VPXOR     Y10, Y10, Y10
	VPSUBD    Y0, Y10, Y10

	Q6KHALF(0, 128, 192, 0)
	Q6KHALF(64, 160, 200, 128)

	VCVTDQ2PS Y10, Y10
	FP16SCALE(208(SI), X2)
	VMULSS    (R8), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y10, Y2, Y8

	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $4, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  q6kloop

q6kdone:
	HSUM8(X8, Y8, X1)
	VMOVSS X8, ret+40(FP)
	VZEROUPPER
	RET

// Q5KCHUNK is Q4KCHUNK with the fifth bits taken from Y13 (qh, shifted
// right by one bit per use).
#define Q5KCHUNK(qoff, aoff, soff) \
	VMOVDQU      qoff(SI), Y0; \
	VPAND        Y15, Y0, Y1; \
	VPSRLW       $4, Y0, Y2; \
	VPAND        Y15, Y2, Y2; \
	VPAND        Y12, Y13, Y3; \
	VPSLLW       $4, Y3, Y3; \
	VPOR         Y3, Y1, Y1; \
	VPSRLW       $1, Y13, Y13; \
	VPAND        Y12, Y13, Y3; \
	VPSLLW       $4, Y3, Y3; \
	VPOR         Y3, Y2, Y2; \
	VPSRLW       $1, Y13, Y13; \
	VPMADDUBSW   aoff(DI), Y1, Y1; \
	VPMADDUBSW   aoff+32(DI), Y2, Y2; \
	VPBROADCASTW soff(SP), Y3; \
	VPBROADCASTW soff+2(SP), Y4; \
	VPMADDWD     Y3, Y1, Y1; \
	VPMADDWD     Y4, Y2, Y2; \
	VPADDD       Y1, Y10, Y10; \
	VPADDD       Y2, Y10, Y10

// func dotQ5_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32
TEXT ·dotQ5_KAVX2(SB), NOSPLIT, $32-44
	MOVQ         w+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         s+24(FP), R9
	MOVQ         nb+32(FP), CX
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x01010101, AX
	VMOVD        AX, X12
	VPBROADCASTD X12, Y12
	VMOVDQU      minPairs<>(SB), X14
	VXORPS       Y8, Y8, Y8
	VXORPS       Y9, Y9, Y9
	TESTQ        CX, CX
	JZ           q5kdone

q5kloop:
	// Scales and mins as in Q4_K.
	MOVL  4(SI), AX
	MOVL  8(SI), BX
	MOVL  12(SI), DX
	MOVL  DX, R10
	SHRL  $4, R10
	ANDL  $0x0f0f0f0f, R10
	MOVL  BX, R11
	SHRL  $6, R11
	ANDL  $0x03030303, R11
	SHLL  $4, R11
	ORL   R11, R10               // mins 4..7
	ANDL  $0x3f3f3f3f, BX        // mins 0..3
	ANDL  $0x0f0f0f0f, DX
	MOVL  AX, R11
	SHRL  $6, R11
	ANDL  $0x03030303, R11
	SHLL  $4, R11
	ORL   R11, DX                // scales 4..7
	ANDL  $0x3f3f3f3f, AX        // scales 0..3
	VMOVD AX, X0
	VPINSRD $1, DX, X0, X0
	VPINSRD $2, BX, X0, X0
	VPINSRD $3, R10, X0, X0      // bytes: scales 0..7, mins 0..7
	VPMOVZXBW X0, Y1
	VMOVDQU   Y1, (SP)           // words: scales 0..7, mins 0..7

	// Mins times the activation sums of their 32 values.
	VPSHUFB   X14, X0, X1        // m0 m0 m1 m1 ... m7 m7
	VPMOVZXBW X1, Y1
	VPMADDWD  (R9), Y1, Y1
	VCVTDQ2PS Y1, Y1
	FP16SCALE(2(SI), X2)
	VMULSS    (R8), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y1, Y2, Y9

	VMOVDQU 16(SI), Y13
	VPXOR   Y10, Y10, Y10
	Q5KCHUNK(48, 0, 0)
	Q5KCHUNK(80, 64, 4)
	Q5KCHUNK(112, 128, 8)
	Q5KCHUNK(144, 192, 12)
	VCVTDQ2PS Y10, Y10
	FP16SCALE(0(SI), X2)
	VMULSS    (R8), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y10, Y2, Y8

	ADDQ $176, SI
	ADDQ $256, DI
	ADDQ $4, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  q5kloop

q5kdone:
	VSUBPS Y9, Y8, Y8
	HSUM8(X8, Y8, X1)
	VMOVSS X8, ret+40(FP)
	VZEROUPPER
	RET

// Q2KQUANT multiplies the 32 2-bit values at shift 2j of Y6 (one half's
// qs) with the activations at aoff(DI) and the scales selected by sel.
#define Q2KQUANT(shift, aoff, sel) \
	VPSRLW     $shift, Y6, Y0; \
	VPAND      Y14, Y0, Y0; \
	VPMADDUBSW aoff(DI), Y0, Y0; \
	VPSHUFB    sel<>(SB), Y4, Y5; \
	VPMADDWD   Y5, Y0, Y0; \
	VPADDD     Y0, Y10, Y10

// func dotQ2_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32
TEXT ·dotQ2_KAVX2(SB), NOSPLIT, $0-44
	MOVQ         w+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         s+24(FP), R9
	MOVQ         nb+32(FP), CX
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x03030303, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	VXORPS       Y8, Y8, Y8
	VXORPS       Y9, Y9, Y9
	TESTQ        CX, CX
	JZ           q2kdone

q2kloop:
	// Mins (high nibbles of the scales) times the group sums.
	VMOVDQU   (SI), X0
	VPSRLW    $4, X0, X1
	VPAND     X15, X1, X1
	VPMOVZXBW X1, Y1
	VPMADDWD  (R9), Y1, Y1
	VCVTDQ2PS Y1, Y1
	FP16SCALE(82(SI), X2)
	VMULSS    (R8), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y1, Y2, Y9

	VPAND     X15, X0, X0
	VPMOVZXBW X0, Y7             // scales 0..15 as words
	VPXOR     Y10, Y10, Y10
	VPERMQ    $0x44, Y7, Y4
	VMOVDQU   16(SI), Y6
	Q2KQUANT(0, 0, q6sel0)
	Q2KQUANT(2, 32, q6sel1)
	Q2KQUANT(4, 64, q6sel2)
	Q2KQUANT(6, 96, q6sel3)
	VPERMQ    $0xee, Y7, Y4
	VMOVDQU   48(SI), Y6
	Q2KQUANT(0, 128, q6sel0)
	Q2KQUANT(2, 160, q6sel1)
	Q2KQUANT(4, 192, q6sel2)
	Q2KQUANT(6, 224, q6sel3)
	VCVTDQ2PS Y10, Y10
	FP16SCALE(80(SI), X2)
	VMULSS    (R8), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y10, Y2, Y8

	ADDQ $84, SI
	ADDQ $256, DI
	ADDQ $4, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  q2kloop

q2kdone:
	VSUBPS Y9, Y8, Y8
	HSUM8(X8, Y8, X1)
	VMOVSS X8, ret+40(FP)
	VZEROUPPER
	RET

// Q3KQUANT is Q2KQUANT with the third bit from Y13 (hmask, shifted right
// by one bit per use).
#define Q3KQUANT(shift, aoff, sel) \
	VPSRLW     $shift, Y6, Y0; \
	VPAND      Y14, Y0, Y0; \
	VPAND      Y12, Y13, Y1; \
	VPSLLW     $2, Y1, Y1; \
	VPOR       Y1, Y0, Y0; \
	VPSRLW     $1, Y13, Y13; \
	VPMADDUBSW aoff(DI), Y0, Y0; \
	VPSHUFB    sel<>(SB), Y4, Y5; \
	VPMADDWD   Y5, Y0, Y0; \
	VPADDD     Y0, Y10, Y10

// func dotQ3_KAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32
TEXT ·dotQ3_KAVX2(SB), NOSPLIT, $0-44
	MOVQ         w+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         s+24(FP), R9
	MOVQ         nb+32(FP), CX
	MOVL         $0x03030303, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	MOVL         $0x01010101, AX
	VMOVD        AX, X12
	VPBROADCASTD X12, Y12
	MOVL         $0x20202020, AX
	VMOVD        AX, X11
	VPBROADCASTD X11, X11
	VXORPS       Y8, Y8, Y8
	TESTQ        CX, CX
	JZ           q3kdone

q3kloop:
	// The 16 6-bit scales (ggml's kmask shuffle), minus 32.
	MOVL    96(SI), AX
	MOVL    100(SI), BX
	MOVL    104(SI), DX
	MOVL    AX, R10
	SHRL    $4, R10
	ANDL    $0x0f0f0f0f, R10
	MOVL    DX, R11
	SHRL    $4, R11
	ANDL    $0x03030303, R11
	SHLL    $4, R11
	ORL     R11, R10          // scales 8..11
	MOVL    BX, R12
	SHRL    $4, R12
	ANDL    $0x0f0f0f0f, R12
	MOVL    DX, R11
	SHRL    $6, R11
	ANDL    $0x03030303, R11
	SHLL    $4, R11
	ORL     R11, R12          // scales 12..15
	ANDL    $0x0f0f0f0f, AX
	MOVL    DX, R11
	ANDL    $0x03030303, R11
	SHLL    $4, R11
	ORL     R11, AX           // scales 0..3
	ANDL    $0x0f0f0f0f, BX
	MOVL    DX, R11
	SHRL    $2, R11
	ANDL    $0x03030303, R11
	SHLL    $4, R11
	ORL     R11, BX           // scales 4..7
	VMOVD   AX, X0
	VPINSRD $1, BX, X0, X0
	VPINSRD $2, R10, X0, X0
	VPINSRD $3, R12, X0, X0
	VPSUBB  X11, X0, X0
	VPMOVSXBW X0, Y7

	// The quants are stored +4: subtract 4 * sum(scale * group sum).
	VPMADDWD (R9), Y7, Y0
	VPSLLD   $2, Y0, Y0
	VPXOR    Y10, Y10, Y10
	VPSUBD   Y0, Y10, Y10

	VMOVDQU   (SI), Y13
	VPERMQ    $0x44, Y7, Y4
	VMOVDQU   32(SI), Y6
	Q3KQUANT(0, 0, q6sel0)
	Q3KQUANT(2, 32, q6sel1)
	Q3KQUANT(4, 64, q6sel2)
	Q3KQUANT(6, 96, q6sel3)
	VPERMQ    $0xee, Y7, Y4
	VMOVDQU   64(SI), Y6
	Q3KQUANT(0, 128, q6sel0)
	Q3KQUANT(2, 160, q6sel1)
	Q3KQUANT(4, 192, q6sel2)
	Q3KQUANT(6, 224, q6sel3)
	VCVTDQ2PS Y10, Y10
	FP16SCALE(108(SI), X2)
	VMULSS    (R8), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y10, Y2, Y8

	ADDQ $110, SI
	ADDQ $256, DI
	ADDQ $4, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  q3kloop

q3kdone:
	HSUM8(X8, Y8, X1)
	VMOVSS X8, ret+40(FP)
	VZEROUPPER
	RET

// IQ4XSSUB multiplies sub-block ib (32 values) with its 6-bit scale.
#define IQ4XSSUB(ib, lbyte, lshift, hshift) \
	VMOVDQU      8+16*ib(SI), X0; \
	VPSRLW       $4, X0, X1; \
	VINSERTI128  $1, X1, Y0, Y0; \
	VPAND        Y15, Y0, Y0; \
	VPSHUFB      Y0, Y9, Y0; \
	VPSIGNB      Y0, Y0, Y1; \
	VMOVDQU      32*ib(DI), Y5; \
	VPSIGNB      Y0, Y5, Y5; \
	VPMADDUBSW   Y5, Y1, Y1; \
	MOVBLZX      lbyte(SI), AX; \
	SHRL         $lshift, AX; \
	ANDL         $15, AX; \
	MOVWLZX      2(SI), BX; \
	SHRL         $hshift, BX; \
	ANDL         $3, BX; \
	SHLL         $4, BX; \
	ORL          BX, AX; \
	SUBL         $32, AX; \
	VMOVD        AX, X3; \
	VPBROADCASTW X3, Y3; \
	VPMADDWD     Y3, Y1, Y1; \
	VPADDD       Y1, Y10, Y10

// func dotIQ4_XSAVX2(w *byte, q *int8, d *float32, s *int16, nb int) float32
TEXT ·dotIQ4_XSAVX2(SB), NOSPLIT, $0-44
	MOVQ         w+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         nb+32(FP), CX
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VBROADCASTI128 iq4Table<>(SB), Y9
	VXORPS       Y8, Y8, Y8
	TESTQ        CX, CX
	JZ           iq4xsdone

iq4xsloop:
	VPXOR Y10, Y10, Y10
	IQ4XSSUB(0, 4, 0, 0)
	IQ4XSSUB(1, 4, 4, 2)
	IQ4XSSUB(2, 5, 0, 4)
	IQ4XSSUB(3, 5, 4, 6)
	IQ4XSSUB(4, 6, 0, 8)
	IQ4XSSUB(5, 6, 4, 10)
	IQ4XSSUB(6, 7, 0, 12)
	IQ4XSSUB(7, 7, 4, 14)
	VCVTDQ2PS Y10, Y10
	FP16SCALE(0(SI), X2)
	VMULSS    (R8), X2, X2
	VBROADCASTSS X2, Y2
	VFMADD231PS Y10, Y2, Y8

	ADDQ $136, SI
	ADDQ $256, DI
	ADDQ $4, R8
	DECQ CX
	JNZ  iq4xsloop

iq4xsdone:
	HSUM8(X8, Y8, X1)
	VMOVSS X8, ret+40(FP)
	VZEROUPPER
	RET

DATA iq4Table<>+0(SB)/8, $0xf6eaddcfbfad9881
DATA iq4Table<>+8(SB)/8, $0x7159453526190d01
GLOBL iq4Table<>(SB), RODATA|NOPTR, $16

DATA q6sel0<>+0(SB)/8, $0x0100010001000100
DATA q6sel0<>+8(SB)/8, $0x0100010001000100
DATA q6sel0<>+16(SB)/8, $0x0302030203020302
DATA q6sel0<>+24(SB)/8, $0x0302030203020302
GLOBL q6sel0<>(SB), RODATA|NOPTR, $32
DATA q6sel1<>+0(SB)/8, $0x0504050405040504
DATA q6sel1<>+8(SB)/8, $0x0504050405040504
DATA q6sel1<>+16(SB)/8, $0x0706070607060706
DATA q6sel1<>+24(SB)/8, $0x0706070607060706
GLOBL q6sel1<>(SB), RODATA|NOPTR, $32
DATA q6sel2<>+0(SB)/8, $0x0908090809080908
DATA q6sel2<>+8(SB)/8, $0x0908090809080908
DATA q6sel2<>+16(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q6sel2<>+24(SB)/8, $0x0b0a0b0a0b0a0b0a
GLOBL q6sel2<>(SB), RODATA|NOPTR, $32
DATA q6sel3<>+0(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6sel3<>+8(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6sel3<>+16(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q6sel3<>+24(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL q6sel3<>(SB), RODATA|NOPTR, $32
