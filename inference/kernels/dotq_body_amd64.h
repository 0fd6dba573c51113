// Bodies of the 32-value block dot products, included by dotq_avx2_amd64.s
// and dotq_vnni_amd64.s, which define DOTU8S8 (int32 lanes of acc += sums of
// unsigned u times signed s, four bytes at a time) and the function names.
//
// Register use: SI weights, DI activation int8s, R8 activation scales,
// R9 activation block sums times scale (sy), CX block count.

// HSUM8 adds the 8 floats of Y (in X) into lane 0 of X, using T.
#define HSUM8(X, Y, T, TX) \
	VEXTRACTF128 $1, Y, TX; \
	VADDPS       TX, X, X; \
	VPERMILPS    $0x4e, X, TX; \
	VADDPS       TX, X, X; \
	VPERMILPS    $0xb1, X, TX; \
	VADDSS       TX, X, X

// FP16SCALE sets X to the fp16 at mem converted, in lane 0.
#define FP16SCALE(mem, X) \
	MOVWLZX   mem, AX; \
	VMOVD     AX, X; \
	VCVTPH2PS X, X

// Q4_0 block at off(SI) with activations at aoff(DI): float acc += dx*dy *
// sum(n*y) and corr += dx*sy, so that the result is acc - 8*corr.
#define Q4_0BLOCK(off, aoff, soff, ACC, CORR) \
	VMOVDQU     off+2(SI), X0; \
	VPSRLW      $4, X0, X1; \
	VINSERTI128 $1, X1, Y0, Y0; \
	VPAND       Y15, Y0, Y0; \
	VPXOR       Y2, Y2, Y2; \
	DOTU8S8(Y0, aoff(DI), Y2, Y3); \
	VCVTDQ2PS   Y2, Y2; \
	FP16SCALE(off(SI), X4); \
	VFMADD231SS soff(R9), X4, CORR; \
	VMULSS      soff(R8), X4, X4; \
	VBROADCASTSS X4, Y4; \
	VFMADD231PS Y2, Y4, ACC

// func Q4_0NAME(w *byte, q *int8, d *float32, sy *float32, nb int) float32
TEXT Q4_0NAME(SB), NOSPLIT, $0-44
	MOVQ w+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ d+16(FP), R8
	MOVQ sy+24(FP), R9
	MOVQ nb+32(FP), CX
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x00010001, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13
	VXORPS       Y8, Y8, Y8
	VXORPS       Y9, Y9, Y9
	VXORPS       X10, X10, X10
	VXORPS       X11, X11, X11
	CMPQ         CX, $2
	JB           q40tail

q40loop:
	Q4_0BLOCK(0, 0, 0, Y8, X10)
	Q4_0BLOCK(18, 32, 4, Y9, X11)
	ADDQ $36, SI
	ADDQ $64, DI
	ADDQ $8, R8
	ADDQ $8, R9
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  q40loop

q40tail:
	TESTQ CX, CX
	JZ    q40done
	Q4_0BLOCK(0, 0, 0, Y8, X10)

q40done:
	VADDPS      Y9, Y8, Y8
	VADDSS      X11, X10, X10
	HSUM8(X8, Y8, Y1, X1)
	MOVL        $0x41000000, AX
	VMOVD       AX, X1
	VFNMADD231SS X1, X10, X8
	VMOVSS      X8, ret+40(FP)
	VZEROUPPER
	RET

// Q8_0 block: |x| times y with x's signs, so no offset is needed.
#define Q8_0BLOCK(off, aoff, soff, ACC) \
	VMOVDQU     off+2(SI), Y0; \
	VPSIGNB     Y0, Y0, Y1; \
	VMOVDQU     aoff(DI), Y5; \
	VPSIGNB     Y0, Y5, Y5; \
	VPXOR       Y2, Y2, Y2; \
	DOTU8S8(Y1, Y5, Y2, Y3); \
	VCVTDQ2PS   Y2, Y2; \
	FP16SCALE(off(SI), X4); \
	VMULSS      soff(R8), X4, X4; \
	VBROADCASTSS X4, Y4; \
	VFMADD231PS Y2, Y4, ACC

// func Q8_0NAME(w *byte, q *int8, d *float32, sy *float32, nb int) float32
TEXT Q8_0NAME(SB), NOSPLIT, $0-44
	MOVQ w+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ d+16(FP), R8
	MOVQ nb+32(FP), CX
	MOVL         $0x00010001, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13
	VXORPS       Y8, Y8, Y8
	VXORPS       Y9, Y9, Y9
	CMPQ         CX, $2
	JB           q80tail

q80loop:
	Q8_0BLOCK(0, 0, 0, Y8)
	Q8_0BLOCK(34, 32, 4, Y9)
	ADDQ $68, SI
	ADDQ $64, DI
	ADDQ $8, R8
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  q80loop

q80tail:
	TESTQ CX, CX
	JZ    q80done
	Q8_0BLOCK(0, 0, 0, Y8)

q80done:
	VADDPS Y9, Y8, Y8
	HSUM8(X8, Y8, Y1, X1)
	VMOVSS X8, ret+40(FP)
	VZEROUPPER
	RET
