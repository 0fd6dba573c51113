//go:build amd64 && !purego

#include "textflag.h"

// The batched kernels: 4 unpacked weight rows (see unpack.go) times the
// tokens of a batch, two tokens at a time, AVX-512 with VNNI. Each 64-byte
// chunk of the rows is loaded once for both tokens; one VPDPBUSD per row,
// token and chunk accumulates each group's integer sum in its own lane.
// Once per super-chunk (16 groups) the sums are converted, scaled by the
// rows' S and the tokens' scales, and the K terms added.
//
// A token's record (Input.tp) holds its reordered int8s, then per
// super-chunk 16 scales (DY), 16 group sums times scale (SY) and the 16
// integer group sums (SI).
//
// For types whose K is a power-of-two multiple of S (K = -2^shift * S:
// Q4_0, Q8_0, Q5_0, IQ4_NL, Q3_K, Q6_K, IQ4_XS), the *Off kernels start each
// row's integer sums at -(SI << shift) instead of adding K*SY in floats.

// CHUNK multiplies chunk c of the 4 rows with both tokens.
#define CHUNK(c) \
	VMOVDQU64 c*256(R8), Z8; \
	VMOVDQU64 c*256+64(R8), Z9; \
	VMOVDQU64 c*256+128(R8), Z10; \
	VMOVDQU64 c*256+192(R8), Z11; \
	VMOVDQU64 c*64(R11), Z12; \
	VMOVDQU64 c*64(R11)(DX*1), Z13; \
	VPDPBUSD  Z12, Z8, Z16; \
	VPDPBUSD  Z13, Z8, Z20; \
	VPDPBUSD  Z12, Z9, Z17; \
	VPDPBUSD  Z13, Z9, Z21; \
	VPDPBUSD  Z12, Z10, Z18; \
	VPDPBUSD  Z13, Z10, Z22; \
	VPDPBUSD  Z12, Z11, Z19; \
	VPDPBUSD  Z13, Z11, Z23

// FIN adds S*DY*sums + K*SY of row r, token t (int sums I, float acc ACC,
// DY and SY registers) and clears I.
#define FIN(r, I, ACC, DY, SY) \
	VCVTDQ2PS   I, I; \
	VMULPS      r*64(R9), I, I; \
	VFMADD231PS I, DY, ACC; \
	VFMADD231PS r*64(R10), SY, ACC; \
	VPXORD      I, I, I

// FINOFF is FIN for the Off kernels: the sums already hold the offset.
#define FINOFF(r, I, ACC, DY) \
	VCVTDQ2PS   I, I; \
	VMULPS      r*64(R9), I, I; \
	VFMADD231PS I, DY, ACC

#define FINISHOFF \
	VMOVUPS (R12), Z26; \
	VMOVUPS (R12)(DX*1), Z27; \
	FINOFF(0, Z16, Z0, Z26); \
	FINOFF(1, Z17, Z1, Z26); \
	FINOFF(2, Z18, Z2, Z26); \
	FINOFF(3, Z19, Z3, Z26); \
	FINOFF(0, Z20, Z4, Z27); \
	FINOFF(1, Z21, Z5, Z27); \
	FINOFF(2, Z22, Z6, Z27); \
	FINOFF(3, Z23, Z7, Z27)

// INITOFF starts the integer sums of a super-chunk at -(SI << shift), the
// shift count in X28 and zero in Z29.
#define INITOFF \
	VMOVDQU32 128(R12), Z24; \
	VMOVDQU32 128(R12)(DX*1), Z25; \
	VPSLLD    X28, Z24, Z24; \
	VPSLLD    X28, Z25, Z25; \
	VPSUBD    Z24, Z29, Z24; \
	VPSUBD    Z25, Z29, Z25; \
	VMOVDQA32 Z24, Z16; \
	VMOVDQA32 Z24, Z17; \
	VMOVDQA32 Z24, Z18; \
	VMOVDQA32 Z24, Z19; \
	VMOVDQA32 Z25, Z20; \
	VMOVDQA32 Z25, Z21; \
	VMOVDQA32 Z25, Z22; \
	VMOVDQA32 Z25, Z23

#define FINISH \
	VMOVUPS (R12), Z24; \
	VMOVUPS 64(R12), Z25; \
	VMOVUPS (R12)(DX*1), Z26; \
	VMOVUPS 64(R12)(DX*1), Z27; \
	FIN(0, Z16, Z0, Z24, Z25); \
	FIN(1, Z17, Z1, Z24, Z25); \
	FIN(2, Z18, Z2, Z24, Z25); \
	FIN(3, Z19, Z3, Z24, Z25); \
	FIN(0, Z20, Z4, Z26, Z27); \
	FIN(1, Z21, Z5, Z26, Z27); \
	FIN(2, Z22, Z6, Z26, Z27); \
	FIN(3, Z23, Z7, Z26, Z27)

// REDUCE4 sums each of A..D and stores the four results at off(BX).
#define REDUCE4(A, B, C, D, YA, YB, YC, YD, XA, XT, off) \
	VEXTRACTF64X4 $1, A, Y30; \
	VADDPS        Y30, YA, YA; \
	VEXTRACTF64X4 $1, B, Y30; \
	VADDPS        Y30, YB, YB; \
	VEXTRACTF64X4 $1, C, Y30; \
	VADDPS        Y30, YC, YC; \
	VEXTRACTF64X4 $1, D, Y30; \
	VADDPS        Y30, YD, YD; \
	VHADDPS       YB, YA, YA; \
	VHADDPS       YD, YC, YC; \
	VHADDPS       YC, YA, YA; \
	VEXTRACTF128  $1, YA, XT; \
	VADDPS        XT, XA, XA; \
	VMOVUPS       XA, off(BX)

// PAIRSTART zeroes the accumulators and points at the rows and the pair's
// records: R11 the int8s, R12 the scales; token B is DX bytes further.
#define PAIRSTART \
	VPXORD Z0, Z0, Z0; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z16, Z16, Z16; \
	VPXORD Z17, Z17, Z17; \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; \
	VPXORD Z21, Z21, Z21; \
	VPXORD Z22, Z22, Z22; \
	VPXORD Z23, Z23, Z23; \
	MOVQ   0(AX), R8; \
	MOVQ   8(AX), R9; \
	MOVQ   16(AX), R10; \
	MOVQ   24(AX), R13; \
	MOVQ   DI, R11; \
	MOVQ   DI, R12; \
	ADDQ   72(AX), R12

#define LOADARGS \
	MOVQ a+0(FP), AX; \
	MOVQ 32(AX), DI; \
	MOVQ 40(AX), DX; \
	MOVQ 48(AX), CX; \
	MOVQ 56(AX), BX

#define NEXTPAIR \
	REDUCE4(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3, X0, X1, 0); \
	REDUCE4(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7, X4, X5, 16); \
	ADDQ 64(AX), DI; \
	ADDQ $32, BX; \
	DECQ CX

// func tile32VNNI(a *tileArgs)
TEXT ·tile32VNNI(SB), NOSPLIT, $0-8
	LOADARGS
	TESTQ CX, CX
	JZ    done32

pair32:
	PAIRSTART

super32:
	CHUNK(0)
	CHUNK(1)
	CHUNK(2)
	CHUNK(3)
	CHUNK(4)
	CHUNK(5)
	CHUNK(6)
	CHUNK(7)
	FINISH
	ADDQ $2048, R8
	ADDQ $256, R9
	ADDQ $256, R10
	ADDQ $512, R11
	ADDQ $192, R12
	DECQ R13
	JNZ  super32

	NEXTPAIR
	JNZ pair32

done32:
	VZEROUPPER
	RET

// func tileKVNNI(a *tileArgs)
TEXT ·tileKVNNI(SB), NOSPLIT, $0-8
	LOADARGS
	TESTQ CX, CX
	JZ    doneK

pairK:
	PAIRSTART

superK:
	CHUNK(0)
	CHUNK(1)
	CHUNK(2)
	CHUNK(3)
	FINISH
	ADDQ $1024, R8
	ADDQ $256, R9
	ADDQ $256, R10
	ADDQ $256, R11
	ADDQ $192, R12
	DECQ R13
	JNZ  superK

	NEXTPAIR
	JNZ pairK

doneK:
	VZEROUPPER
	RET

// func tile32OffVNNI(a *tileArgs)
TEXT ·tile32OffVNNI(SB), NOSPLIT, $0-8
	LOADARGS
	VMOVQ  80(AX), X28
	VPXORD Z29, Z29, Z29
	TESTQ CX, CX
	JZ    done32o

pair32o:
	PAIRSTART

super32o:
	INITOFF
	CHUNK(0)
	CHUNK(1)
	CHUNK(2)
	CHUNK(3)
	CHUNK(4)
	CHUNK(5)
	CHUNK(6)
	CHUNK(7)
	FINISHOFF
	ADDQ $2048, R8
	ADDQ $256, R9
	ADDQ $256, R10
	ADDQ $512, R11
	ADDQ $192, R12
	DECQ R13
	JNZ  super32o

	NEXTPAIR
	JNZ pair32o

done32o:
	VZEROUPPER
	RET

// func tileKOffVNNI(a *tileArgs)
TEXT ·tileKOffVNNI(SB), NOSPLIT, $0-8
	LOADARGS
	VMOVQ  80(AX), X28
	VPXORD Z29, Z29, Z29
	TESTQ CX, CX
	JZ    doneKo

pairKo:
	PAIRSTART

superKo:
	INITOFF
	CHUNK(0)
	CHUNK(1)
	CHUNK(2)
	CHUNK(3)
	FINISHOFF
	ADDQ $1024, R8
	ADDQ $256, R9
	ADDQ $256, R10
	ADDQ $256, R11
	ADDQ $192, R12
	DECQ R13
	JNZ  superKo

	NEXTPAIR
	JNZ pairKo

doneKo:
	VZEROUPPER
	RET
