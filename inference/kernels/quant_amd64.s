//go:build amd64 && !purego

#include "textflag.h"

// Activation quantizers, AVX2 + FMA. They round with VCVTPS2DQ (nearest,
// ties to even) and so agree bit for bit with quantBlock in input.go.

DATA packPerm<>+0(SB)/4, $0
DATA packPerm<>+4(SB)/4, $4
DATA packPerm<>+8(SB)/4, $1
DATA packPerm<>+12(SB)/4, $5
DATA packPerm<>+16(SB)/4, $2
DATA packPerm<>+20(SB)/4, $6
DATA packPerm<>+24(SB)/4, $3
DATA packPerm<>+28(SB)/4, $7
GLOBL packPerm<>(SB), RODATA|NOPTR, $32

// SETUP loads the constants: Y15 = abs mask, X14 = 127, X13 = 1, Y12 = the
// pack permutation, X11 = 0.
#define SETUP \
	VPCMPEQD Y15, Y15, Y15; \
	VPSRLD   $1, Y15, Y15; \
	MOVL     $0x42fe0000, AX; \
	VMOVD    AX, X14; \
	MOVL     $0x3f800000, AX; \
	VMOVD    AX, X13; \
	VMOVDQU  packPerm<>(SB), Y12; \
	VXORPS   X11, X11, X11

// HMAX reduces the 8 floats of Y4 to their maximum in every lane of X4.
#define HMAX \
	VEXTRACTF128 $1, Y4, X5; \
	VMAXPS       X5, X4, X4; \
	VPERMILPS    $0x4e, X4, X5; \
	VMAXPS       X5, X4, X4; \
	VPERMILPS    $0xb1, X4, X5; \
	VMAXPS       X5, X4, X4

// SCALE turns max|x| in X4 into d = max/127 (stored at (R8)) and
// Y5 = 1/d broadcast (0 when d is 0).
#define SCALE \
	VDIVSS       X14, X4, X4; \
	VMOVSS       X4, (R8); \
	VDIVSS       X4, X13, X5; \
	VCMPSS       $4, X11, X4, X6; \
	VANDPS       X6, X5, X5; \
	VBROADCASTSS X5, Y5

// QUANT32 quantizes the 32 floats at (SI) by Y5 into 32 int8 at (DI),
// leaving the int32 values in Y0..Y3.
#define QUANT32 \
	VMULPS    (SI), Y5, Y0; \
	VMULPS    32(SI), Y5, Y1; \
	VMULPS    64(SI), Y5, Y2; \
	VMULPS    96(SI), Y5, Y3; \
	VCVTPS2DQ Y0, Y0; \
	VCVTPS2DQ Y1, Y1; \
	VCVTPS2DQ Y2, Y2; \
	VCVTPS2DQ Y3, Y3; \
	VPACKSSDW Y1, Y0, Y6; \
	VPACKSSDW Y3, Y2, Y7; \
	VPACKSSWB Y7, Y6, Y6; \
	VPERMD    Y6, Y12, Y6; \
	VMOVDQU   Y6, (DI)

// func quantQ8_0AVX2(x *float32, q *int8, d *float32, s *int16, nb int)
TEXT ·quantQ8_0AVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ d+16(FP), R8
	MOVQ s+24(FP), R9
	MOVQ nb+32(FP), CX
	SETUP
	TESTQ CX, CX
	JZ    q80done

q80loop:
	VANDPS (SI), Y15, Y4
	VANDPS 32(SI), Y15, Y5
	VANDPS 64(SI), Y15, Y6
	VANDPS 96(SI), Y15, Y7
	VMAXPS Y5, Y4, Y4
	VMAXPS Y7, Y6, Y6
	VMAXPS Y6, Y4, Y4
	HMAX
	SCALE
	QUANT32

	// Block sum from the int32 values.
	VPADDD       Y1, Y0, Y0
	VPADDD       Y3, Y2, Y2
	VPADDD       Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, AX
	MOVW         AX, (R9)

	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R8
	ADDQ $2, R9
	DECQ CX
	JNZ  q80loop

q80done:
	VZEROUPPER
	RET

// func quantQ8_KAVX2(x *float32, q *int8, d *float32, s *int16, nb int)
TEXT ·quantQ8_KAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ d+16(FP), R8
	MOVQ s+24(FP), R9
	MOVQ nb+32(FP), CX
	SETUP
	MOVL         $0x01010101, AX
	VMOVD        AX, X10
	VPBROADCASTD X10, Y10
	MOVL         $0x00010001, AX
	VMOVD        AX, X9
	VPBROADCASTD X9, Y9
	TESTQ        CX, CX
	JZ           qkdone

qkloop:
	// max|x| over the 256 values
	VXORPS Y4, Y4, Y4
	XORQ   BX, BX

qkmax:
	VANDPS (SI)(BX*1), Y15, Y5
	VANDPS 32(SI)(BX*1), Y15, Y6
	VMAXPS Y5, Y4, Y4
	VMAXPS Y6, Y4, Y4
	ADDQ   $64, BX
	CMPQ   BX, $1024
	JB     qkmax
	HMAX
	SCALE

	MOVQ $8, DX

qkquant:
	QUANT32

	// Sums of the two groups of 16: byte pairs, then quads, then lanes.
	VPMADDUBSW   Y6, Y10, Y7
	VPMADDWD     Y9, Y7, Y7
	VPHADDD      Y7, Y7, Y7
	VPHADDD      Y7, Y7, Y7
	VMOVD        X7, AX
	MOVW         AX, (R9)
	VEXTRACTI128 $1, Y7, X7
	VMOVD        X7, AX
	MOVW         AX, 2(R9)

	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R9
	DECQ DX
	JNZ  qkquant

	ADDQ $4, R8
	DECQ CX
	JNZ  qkloop

qkdone:
	VZEROUPPER
	RET
