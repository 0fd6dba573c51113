//go:build amd64 && !purego

#include "textflag.h"

// Single-token Q4_0 and Q8_0 dot products with AVX-512 VNNI: two blocks per
// 512-bit VPDPBUSD, eight blocks per iteration so that their scales are
// converted and multiplied together. The per-block code of
// dotq_body_amd64.h finishes the last nb%8 blocks.
//
// Register use: SI weights, DI activation int8s, R8 scales, R9 sy, CX
// blocks; Z10, Z11 accumulators; Y12 sum of dx*sy; Z20..Z23 lane-pair
// selectors; Z29, Z28 constants.

// SELECTORS sets Z20+k (k < 4) to lanes 0..7 = 2k, lanes 8..15 = 2k+1.
#define SELECTORS \
	MOVL           $0, AX; \
	VPBROADCASTD   AX, Z20; \
	MOVL           $1, AX; \
	VPBROADCASTD   AX, Z25; \
	VALIGND        $8, Z20, Z25, Z20; \
	MOVL           $2, AX; \
	VPBROADCASTD   AX, Z21; \
	MOVL           $3, AX; \
	VPBROADCASTD   AX, Z25; \
	VALIGND        $8, Z21, Z25, Z21; \
	MOVL           $4, AX; \
	VPBROADCASTD   AX, Z22; \
	MOVL           $5, AX; \
	VPBROADCASTD   AX, Z25; \
	VALIGND        $8, Z22, Z25, Z22; \
	MOVL           $6, AX; \
	VPBROADCASTD   AX, Z23; \
	MOVL           $7, AX; \
	VPBROADCASTD   AX, Z25; \
	VALIGND        $8, Z23, Z25, Z23

// SCALES8(size) sets Y13 = dx*dy of the next 8 blocks (dx the fp16 at the
// start of each size-byte block) and adds dx*sy into Y12.
#define SCALES8(size) \
	VPXOR       X13, X13, X13; \
	VPINSRW     $0, 0*size(SI), X13, X13; \
	VPINSRW     $1, 1*size(SI), X13, X13; \
	VPINSRW     $2, 2*size(SI), X13, X13; \
	VPINSRW     $3, 3*size(SI), X13, X13; \
	VPINSRW     $4, 4*size(SI), X13, X13; \
	VPINSRW     $5, 5*size(SI), X13, X13; \
	VPINSRW     $6, 6*size(SI), X13, X13; \
	VPINSRW     $7, 7*size(SI), X13, X13; \
	VCVTPH2PS   X13, Y13; \
	VFMADD231PS (R9), Y13, Y12; \
	VMULPS      (R8), Y13, Y13

// PAIR40(b, SEL, ACC): blocks b and b+1 of Q4_0 (18 bytes each).
#define PAIR40(b, SEL, ACC) \
	VMOVDQU       b*18+2(SI), X0; \
	VINSERTI128   $1, (b+1)*18+2(SI), Y0, Y0; \
	VPSRLW        $4, Y0, Y1; \
	VINSERTI64X4  $1, Y1, Z0, Z0; \
	VSHUFI64X2    $0xd8, Z0, Z0, Z0; \
	VPANDD        Z29, Z0, Z0; \
	VPXORD        Z2, Z2, Z2; \
	VPDPBUSD      b*32(DI), Z0, Z2; \
	VCVTDQ2PS     Z2, Z2; \
	VPERMPS       Z13, SEL, Z3; \
	VFMADD231PS   Z2, Z3, ACC

// func dotQ4_0Z(w *byte, q *int8, d *float32, sy *float32, nb int) float32
// nb is a multiple of 8.
TEXT ·dotQ4_0Z(SB), NOSPLIT, $0-44
	MOVQ         w+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         sy+24(FP), R9
	MOVQ         nb+32(FP), CX
	SELECTORS
	MOVL         $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z29
	VPXORD       Z10, Z10, Z10
	VPXORD       Z11, Z11, Z11
	VXORPS       Y12, Y12, Y12
	SHRQ         $3, CX
	JZ           q40zdone

q40zloop:
	SCALES8(18)
	PAIR40(0, Z20, Z10)
	PAIR40(2, Z21, Z11)
	PAIR40(4, Z22, Z10)
	PAIR40(6, Z23, Z11)
	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  q40zloop

q40zdone:
	VADDPS        Z11, Z10, Z10
	VEXTRACTF64X4 $1, Z10, Y11
	VADDPS        Y11, Y10, Y10
	// result = sum(acc) - 8*sum(dx*sy)
	MOVL          $0x41000000, AX
	VPBROADCASTD  AX, Y1
	VFNMADD231PS  Y1, Y12, Y10
	VEXTRACTF128  $1, Y10, X1
	VADDPS        X1, X10, X10
	VPERMILPS     $0x4e, X10, X1
	VADDPS        X1, X10, X10
	VPERMILPS     $0xb1, X10, X1
	VADDSS        X1, X10, X10
	VMOVSS        X10, ret+40(FP)
	VZEROUPPER
	RET

// PAIR80(b, SEL, ACC): blocks b and b+1 of Q8_0 (34 bytes each), the
// int8 weights made unsigned by flipping their top bit (+128).
#define PAIR80(b, SEL, ACC) \
	VMOVDQU       b*34+2(SI), Y0; \
	VINSERTI64X4  $1, (b+1)*34+2(SI), Z0, Z0; \
	VPXORD        Z28, Z0, Z0; \
	VPXORD        Z2, Z2, Z2; \
	VPDPBUSD      b*32(DI), Z0, Z2; \
	VCVTDQ2PS     Z2, Z2; \
	VPERMPS       Z13, SEL, Z3; \
	VFMADD231PS   Z2, Z3, ACC

// func dotQ8_0Z(w *byte, q *int8, d *float32, sy *float32, nb int) float32
// nb is a multiple of 8.
TEXT ·dotQ8_0Z(SB), NOSPLIT, $0-44
	MOVQ         w+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         sy+24(FP), R9
	MOVQ         nb+32(FP), CX
	SELECTORS
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Z28
	VPXORD       Z10, Z10, Z10
	VPXORD       Z11, Z11, Z11
	VXORPS       Y12, Y12, Y12
	SHRQ         $3, CX
	JZ           q80zdone

q80zloop:
	SCALES8(34)
	PAIR80(0, Z20, Z10)
	PAIR80(2, Z21, Z11)
	PAIR80(4, Z22, Z10)
	PAIR80(6, Z23, Z11)
	ADDQ $272, SI
	ADDQ $256, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  q80zloop

q80zdone:
	VADDPS        Z11, Z10, Z10
	VEXTRACTF64X4 $1, Z10, Y11
	VADDPS        Y11, Y10, Y10
	// result = sum(acc) - 128*sum(dx*sy)
	MOVL          $0x43000000, AX
	VPBROADCASTD  AX, Y1
	VFNMADD231PS  Y1, Y12, Y10
	VEXTRACTF128  $1, Y10, X1
	VADDPS        X1, X10, X10
	VPERMILPS     $0x4e, X10, X1
	VADDPS        X1, X10, X10
	VPERMILPS     $0xb1, X10, X1
	VADDSS        X1, X10, X10
	VMOVSS        X10, ret+40(FP)
	VZEROUPPER
	RET

// Q4_0 with AVX-512 VBMI as well: VPERMT2B gathers the 16 quant bytes of
// four 18-byte blocks into one register and the eight fp16 scales of an
// 8-block group into another, so there is one byte shuffle per four blocks
// instead of several per two. The activations come reordered to match
// (Input.qp): per 4 blocks, their values 0..15, then their values 16..31.
// Lanes 4k..4k+3 of each VPDPBUSD then hold block k.

// func dotQ4_0P(w *byte, q *int8, d *float32, sy *float32, nb int) float32
// nb is a multiple of 8.
TEXT ·dotQ4_0P(SB), NOSPLIT, $0-44
	MOVQ         w+0(FP), SI
	MOVQ         q+8(FP), DI
	MOVQ         d+16(FP), R8
	MOVQ         sy+24(FP), R9
	MOVQ         nb+32(FP), CX
	VMOVDQU64    q4pW<>(SB), Z20
	VMOVDQU64    q4pD<>(SB), Z21
	VMOVDQU64    q4pSel0<>(SB), Z22
	VMOVDQU64    q4pSel1<>(SB), Z23
	MOVL         $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z29
	VPXORD       Z10, Z10, Z10
	VPXORD       Z11, Z11, Z11
	VXORPS       Y12, Y12, Y12
	SHRQ         $3, CX
	JZ           q4pdone

q4ploop:
	VMOVDQU64   0(SI), Z0
	VMOVDQU64   8(SI), Z1
	VMOVDQU64   72(SI), Z2
	VMOVDQU64   80(SI), Z3
	VMOVDQA64   Z21, Z4
	VPERMI2B    Z2, Z0, Z4
	VCVTPH2PS   X4, Y4
	VFMADD231PS (R9), Y4, Y12
	VMULPS      (R8), Y4, Y4
	VPERMT2B    Z1, Z20, Z0
	VPERMT2B    Z3, Z20, Z2

	VPANDD      Z29, Z0, Z5
	VPSRLW      $4, Z0, Z6
	VPANDD      Z29, Z6, Z6
	VPXORD      Z7, Z7, Z7
	VPDPBUSD    0(DI), Z5, Z7
	VPDPBUSD    64(DI), Z6, Z7
	VCVTDQ2PS   Z7, Z7
	VPERMPS     Z4, Z22, Z8
	VFMADD231PS Z7, Z8, Z10

	VPANDD      Z29, Z2, Z5
	VPSRLW      $4, Z2, Z6
	VPANDD      Z29, Z6, Z6
	VPXORD      Z7, Z7, Z7
	VPDPBUSD    128(DI), Z5, Z7
	VPDPBUSD    192(DI), Z6, Z7
	VCVTDQ2PS   Z7, Z7
	VPERMPS     Z4, Z23, Z8
	VFMADD231PS Z7, Z8, Z11

	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  q4ploop

q4pdone:
	VADDPS        Z11, Z10, Z10
	VEXTRACTF64X4 $1, Z10, Y11
	VADDPS        Y11, Y10, Y10
	MOVL          $0x41000000, AX
	VPBROADCASTD  AX, Y1
	VFNMADD231PS  Y1, Y12, Y10
	VEXTRACTF128  $1, Y10, X1
	VADDPS        X1, X10, X10
	VPERMILPS     $0x4e, X10, X1
	VADDPS        X1, X10, X10
	VPERMILPS     $0xb1, X10, X1
	VADDSS        X1, X10, X10
	VMOVSS        X10, ret+40(FP)
	VZEROUPPER
	RET

DATA q4pW<>+0(SB)/8, $0x0908070605040302
DATA q4pW<>+8(SB)/8, $0x11100f0e0d0c0b0a
DATA q4pW<>+16(SB)/8, $0x1b1a191817161514
DATA q4pW<>+24(SB)/8, $0x232221201f1e1d1c
DATA q4pW<>+32(SB)/8, $0x2d2c2b2a29282726
DATA q4pW<>+40(SB)/8, $0x3534333231302f2e
DATA q4pW<>+48(SB)/8, $0x3f3e3d3c3b3a3938
DATA q4pW<>+56(SB)/8, $0x7f7e7d7c7b7a7978
GLOBL q4pW<>(SB), RODATA|NOPTR, $64

DATA q4pD<>+0(SB)/8, $0x3736252413120100
DATA q4pD<>+8(SB)/8, $0x7776656453524140
DATA q4pD<>+16(SB)/8, $0x0000000000000000
DATA q4pD<>+24(SB)/8, $0x0000000000000000
DATA q4pD<>+32(SB)/8, $0x0000000000000000
DATA q4pD<>+40(SB)/8, $0x0000000000000000
DATA q4pD<>+48(SB)/8, $0x0000000000000000
DATA q4pD<>+56(SB)/8, $0x0000000000000000
GLOBL q4pD<>(SB), RODATA|NOPTR, $64

DATA q4pSel0<>+0(SB)/8, $0x0000000000000000
DATA q4pSel0<>+8(SB)/8, $0x0000000000000000
DATA q4pSel0<>+16(SB)/8, $0x0000000100000001
DATA q4pSel0<>+24(SB)/8, $0x0000000100000001
DATA q4pSel0<>+32(SB)/8, $0x0000000200000002
DATA q4pSel0<>+40(SB)/8, $0x0000000200000002
DATA q4pSel0<>+48(SB)/8, $0x0000000300000003
DATA q4pSel0<>+56(SB)/8, $0x0000000300000003
GLOBL q4pSel0<>(SB), RODATA|NOPTR, $64

DATA q4pSel1<>+0(SB)/8, $0x0000000400000004
DATA q4pSel1<>+8(SB)/8, $0x0000000400000004
DATA q4pSel1<>+16(SB)/8, $0x0000000500000005
DATA q4pSel1<>+24(SB)/8, $0x0000000500000005
DATA q4pSel1<>+32(SB)/8, $0x0000000600000006
DATA q4pSel1<>+40(SB)/8, $0x0000000600000006
DATA q4pSel1<>+48(SB)/8, $0x0000000700000007
DATA q4pSel1<>+56(SB)/8, $0x0000000700000007
GLOBL q4pSel1<>(SB), RODATA|NOPTR, $64
