// Bodies of the other 32-value block dot products (Q4_1, Q5_0, Q5_1,
// IQ4_NL), included by dotq_avx2_amd64.s and dotq_vnni_amd64.s after
// dotq_body_amd64.h. Register use: SI weights, DI activations, R8 scales,
// R9 sy, CX blocks; Y6, Y7 float accumulators; X8, X14 the scalar ones;
// Y9..Y12, Y15 constants; Y13 reserved for DOTU8S8.

// NIBBLES32 expands the 16 bytes at mem into 32 nibbles in Y0 (low nibbles
// are values 0..15, high nibbles 16..31).
#define NIBBLES32(mem) \
	VMOVDQU     mem, X0; \
	VPSRLW      $4, X0, X1; \
	VINSERTI128 $1, X1, Y0, Y0; \
	VPAND       Y15, Y0, Y0

// HIGHBITS sets Y1 to 0x10 in byte j where bit j of the dword at mem is set.
#define HIGHBITS(mem) \
	VPBROADCASTD mem, Y1; \
	VPSHUFB      Y12, Y1, Y1; \
	VPAND        Y11, Y1, Y1; \
	VPCMPEQB     Y11, Y1, Y1; \
	VPAND        Y10, Y1, Y1

// FINISHBLOCK scales the int32 lanes of Y2 by dx*dy (dx the fp16 at dmem)
// into ACC.
#define FINISHBLOCK(dmem, soff, ACC) \
	VCVTDQ2PS    Y2, Y2; \
	FP16SCALE(dmem, X4); \
	VMULSS       soff(R8), X4, X4; \
	VBROADCASTSS X4, Y4; \
	VFMADD231PS  Y2, Y4, ACC

// Q4_1: sum dx*dy*n*y + m*sy.
#define Q4_1BLOCK(off, aoff, soff, ACC, CORR) \
	NIBBLES32(off+4(SI)); \
	VPXOR       Y2, Y2, Y2; \
	DOTU8S8(Y0, aoff(DI), Y2, Y3); \
	FP16SCALE(off+2(SI), X5); \
	VFMADD231SS soff(R9), X5, CORR; \
	FINISHBLOCK(off(SI), soff, ACC)

// Q5_0: sum dx*dy*u*y - 16*dx*sy.
#define Q5_0BLOCK(off, aoff, soff, ACC, CORR) \
	NIBBLES32(off+6(SI)); \
	HIGHBITS(off+2(SI)); \
	VPOR        Y1, Y0, Y0; \
	VPXOR       Y2, Y2, Y2; \
	DOTU8S8(Y0, aoff(DI), Y2, Y3); \
	FP16SCALE(off(SI), X5); \
	VFMADD231SS soff(R9), X5, CORR; \
	FINISHBLOCK(off(SI), soff, ACC)

// Q5_1: sum dx*dy*u*y + m*sy.
#define Q5_1BLOCK(off, aoff, soff, ACC, CORR) \
	NIBBLES32(off+8(SI)); \
	HIGHBITS(off+4(SI)); \
	VPOR        Y1, Y0, Y0; \
	VPXOR       Y2, Y2, Y2; \
	DOTU8S8(Y0, aoff(DI), Y2, Y3); \
	FP16SCALE(off+2(SI), X5); \
	VFMADD231SS soff(R9), X5, CORR; \
	FINISHBLOCK(off(SI), soff, ACC)

// IQ4_NL: codebook values, then |x| times y with x's signs.
#define IQ4_NLBLOCK(off, aoff, soff, ACC, CORR) \
	NIBBLES32(off+2(SI)); \
	VPSHUFB     Y0, Y9, Y0; \
	VPSIGNB     Y0, Y0, Y1; \
	VMOVDQU     aoff(DI), Y5; \
	VPSIGNB     Y0, Y5, Y5; \
	VPXOR       Y2, Y2, Y2; \
	DOTU8S8(Y1, Y5, Y2, Y3); \
	FINISHBLOCK(off(SI), soff, ACC)

// SETUP2 loads the constants the blocks above use.
#define SETUP2 \
	MOVL         $0x0f0f0f0f, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15; \
	MOVL         $0x00010001, AX; \
	VMOVD        AX, X13; \
	VPBROADCASTD X13, Y13; \
	MOVL         $0x10101010, AX; \
	VMOVD        AX, X10; \
	VPBROADCASTD X10, Y10; \
	VMOVDQU      bitMasks<>(SB), Y11; \
	VMOVDQU      bitBytes<>(SB), Y12; \
	VBROADCASTI128 iq4nlTable<>(SB), Y9; \
	VXORPS       Y6, Y6, Y6; \
	VXORPS       Y7, Y7, Y7; \
	VXORPS       X8, X8, X8; \
	VXORPS       X14, X14, X14

// DOTFUNC defines a kernel over blocks of size bytes with BLOCK; the result
// is acc + mult*corr.
#define DOTFUNC(NAME, BLOCK, size, mult) \
TEXT NAME(SB), NOSPLIT, $0-44; \
	MOVQ w+0(FP), SI; \
	MOVQ q+8(FP), DI; \
	MOVQ d+16(FP), R8; \
	MOVQ sy+24(FP), R9; \
	MOVQ nb+32(FP), CX; \
	SETUP2; \
	CMPQ CX, $2; \
	JB   tail; \
loop: \
	BLOCK(0, 0, 0, Y6, X8); \
	BLOCK(size, 32, 4, Y7, X14); \
	ADDQ $(2*size), SI; \
	ADDQ $64, DI; \
	ADDQ $8, R8; \
	ADDQ $8, R9; \
	SUBQ $2, CX; \
	CMPQ CX, $2; \
	JAE  loop; \
tail: \
	TESTQ CX, CX; \
	JZ    done; \
	BLOCK(0, 0, 0, Y6, X8); \
done: \
	VADDPS      Y7, Y6, Y6; \
	VADDSS      X14, X8, X8; \
	HSUM8(X6, Y6, Y1, X1); \
	MOVL        $mult, AX; \
	VMOVD       AX, X1; \
	VFMADD231SS X1, X8, X6; \
	VMOVSS      X6, ret+40(FP); \
	VZEROUPPER; \
	RET
