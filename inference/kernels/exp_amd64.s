//go:build amd64 && !purego

#include "textflag.h"

// Vector exp (AVX2 + FMA): e^x = 2^n * e^r with n = round(x*log2 e),
// r = x - n*ln 2 (in two parts), e^r by Cephes' expf polynomial; about 1
// ulp over the range it clamps x to, [-87, 88], which keeps 2^n normal.

#define EXPCONSTS \
	MOVL         $0x42b00000, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15; \
	MOVL         $0xc2ae0000, AX; \
	VMOVD        AX, X14; \
	VPBROADCASTD X14, Y14; \
	MOVL         $0x3fb8aa3b, AX; \
	VMOVD        AX, X13; \
	VPBROADCASTD X13, Y13; \
	MOVL         $0x3f318000, AX; \
	VMOVD        AX, X12; \
	VPBROADCASTD X12, Y12; \
	MOVL         $0xb95e8083, AX; \
	VMOVD        AX, X11; \
	VPBROADCASTD X11, Y11; \
	MOVL         $0x3f800000, AX; \
	VMOVD        AX, X10; \
	VPBROADCASTD X10, Y10

// EXP8 sets Y0 = exp(Y0), using Y1..Y3.
#define EXP8 \
	VMINPS       Y15, Y0, Y0; \
	VMAXPS       Y14, Y0, Y0; \
	VMULPS       Y13, Y0, Y1; \
	VROUNDPS     $0, Y1, Y1; \
	VFNMADD231PS Y12, Y1, Y0; \
	VFNMADD231PS Y11, Y1, Y0; \
	MOVL         $0x39506967, AX; \
	VMOVD        AX, X2; \
	VPBROADCASTD X2, Y2; \
	MOVL         $0x3ab743ce, AX; \
	VMOVD        AX, X3; \
	VPBROADCASTD X3, Y3; \
	VFMADD213PS  Y3, Y0, Y2; \
	MOVL         $0x3c088908, AX; \
	VMOVD        AX, X3; \
	VPBROADCASTD X3, Y3; \
	VFMADD213PS  Y3, Y0, Y2; \
	MOVL         $0x3d2aa9c1, AX; \
	VMOVD        AX, X3; \
	VPBROADCASTD X3, Y3; \
	VFMADD213PS  Y3, Y0, Y2; \
	MOVL         $0x3e2aaaaa, AX; \
	VMOVD        AX, X3; \
	VPBROADCASTD X3, Y3; \
	VFMADD213PS  Y3, Y0, Y2; \
	MOVL         $0x3f000000, AX; \
	VMOVD        AX, X3; \
	VPBROADCASTD X3, Y3; \
	VFMADD213PS  Y3, Y0, Y2; \
	VMULPS       Y0, Y0, Y3; \
	VFMADD213PS  Y0, Y3, Y2; \
	VADDPS       Y10, Y2, Y2; \
	VCVTPS2DQ    Y1, Y1; \
	VPSLLD       $23, Y1, Y1; \
	VPADDD       Y1, Y2, Y0

// func expSumAVX2(dst, src *float32, n int, sub float32) float32
// dst[i] = exp(src[i] - sub) for i < n (a multiple of 8); returns the sum.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-36
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS sub+24(FP), Y9
	EXPCONSTS
	VXORPS       Y8, Y8, Y8
	TESTQ        CX, CX
	JZ           expdone

exploop:
	VMOVUPS (SI), Y0
	VSUBPS  Y9, Y0, Y0
	EXP8
	VMOVUPS Y0, (DI)
	VADDPS  Y0, Y8, Y8
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     exploop

expdone:
	VEXTRACTF128 $1, Y8, X1
	VADDPS       X1, X8, X8
	VPERMILPS    $0x4e, X8, X1
	VADDPS       X1, X8, X8
	VPERMILPS    $0xb1, X8, X1
	VADDSS       X1, X8, X8
	VMOVSS       X8, ret+32(FP)
	VZEROUPPER
	RET

// func siluMulAVX2(gate, up *float32, n int)
// g[i] = g[i] / (1 + exp(-g[i])) * u[i] for i < n (a multiple of 8).
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-24
	MOVQ  gate+0(FP), DI
	MOVQ  up+8(FP), SI
	MOVQ  n+16(FP), CX
	EXPCONSTS
	VXORPS Y9, Y9, Y9
	TESTQ CX, CX
	JZ    siludone

siluloop:
	VMOVUPS (DI), Y4
	VSUBPS  Y4, Y9, Y0
	EXP8
	VADDPS  Y10, Y0, Y0
	VMULPS  (SI), Y4, Y4
	VDIVPS  Y0, Y4, Y4
	VMOVUPS Y4, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     siluloop

siludone:
	VZEROUPPER
	RET
