//go:build amd64 && !purego

#include "textflag.h"

// Float kernels (AVX2 + FMA + F16C). n is a multiple of 8; callers handle
// the rest in Go.

#define HSUM8(X, Y, TX) \
	VEXTRACTF128 $1, Y, TX; \
	VADDPS       TX, X, X; \
	VPERMILPS    $0x4e, X, TX; \
	VADDPS       TX, X, X; \
	VPERMILPS    $0xb1, X, TX; \
	VADDSS       TX, X, X

// func dotF16AVX2(w *byte, x *float32, n int) float32
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JB     f16tail

f16loop:
	VCVTPH2PS   (SI), Y4
	VCVTPH2PS   16(SI), Y5
	VCVTPH2PS   32(SI), Y6
	VCVTPH2PS   48(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $64, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JAE         f16loop

f16tail:
	CMPQ        CX, $8
	JB          f16done
	VCVTPH2PS   (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $16, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         f16tail

f16done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM8(X0, Y0, X1)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// BF16TOF32 widens 8 bf16 at mem into the floats of Y.
#define BF16TOF32(mem, Y) \
	VPMOVZXWD mem, Y; \
	VPSLLD    $16, Y, Y

// func dotBF16AVX2(w *byte, x *float32, n int) float32
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JB     bf16tail

bf16loop:
	BF16TOF32((SI), Y4)
	BF16TOF32(16(SI), Y5)
	BF16TOF32(32(SI), Y6)
	BF16TOF32(48(SI), Y7)
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $64, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JAE         bf16loop

bf16tail:
	CMPQ        CX, $8
	JB          bf16done
	BF16TOF32((SI), Y4)
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $16, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         bf16tail

bf16done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM8(X0, Y0, X1)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF32AVX2(w *byte, x *float32, n int) float32
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JB     f32tail

f32loop:
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JAE         f32loop

f32tail:
	CMPQ        CX, $8
	JB          f32done
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         f32tail

f32done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM8(X0, Y0, X1)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func axpyF16AVX2(alpha float32, x *uint16, y *float32, n int)
TEXT ·axpyF16AVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DI
	MOVQ         n+24(FP), CX
	CMPQ         CX, $8
	JB           axdone

axloop:
	VCVTPH2PS   (SI), Y1
	VFMADD213PS (DI), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $16, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JAE         axloop

axdone:
	VZEROUPPER
	RET

// func f32ToF16AVX2(dst *uint16, src *float32, n int)
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	CMPQ CX, $8
	JB   cvdone

cvloop:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	SUBQ      $8, CX
	CMPQ      CX, $8
	JAE       cvloop

cvdone:
	VZEROUPPER
	RET

// func f16ToF32AVX2(dst *float32, src *uint16, n int)
TEXT ·f16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	CMPQ CX, $8
	JB   widone

wiloop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	CMPQ      CX, $8
	JAE       wiloop

widone:
	VZEROUPPER
	RET

// func dotsF32F16AVX2(dst *float32, q *float32, k *uint16, n, m, stride int, scale float32)
// dst[p] = scale * dot(q[:m], k[p*stride:][:m]) for p < n; m is a multiple of 8.
TEXT ·dotsF32F16AVX2(SB), NOSPLIT, $0-52
	MOVQ         dst+0(FP), DI
	MOVQ         k+16(FP), SI
	MOVQ         n+24(FP), CX
	MOVQ         stride+40(FP), R10
	SHLQ         $1, R10
	VBROADCASTSS scale+48(FP), X9
	TESTQ        CX, CX
	JZ           dotsdone

dotspos:
	MOVQ   q+8(FP), R8
	MOVQ   m+32(FP), DX
	MOVQ   SI, R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	CMPQ   DX, $16
	JB     dotstail

dotsloop:
	VCVTPH2PS   (R11), Y2
	VCVTPH2PS   16(R11), Y3
	VFMADD231PS (R8), Y2, Y0
	VFMADD231PS 32(R8), Y3, Y1
	ADDQ        $32, R11
	ADDQ        $64, R8
	SUBQ        $16, DX
	CMPQ        DX, $16
	JAE         dotsloop

dotstail:
	TESTQ       DX, DX
	JZ          dotssum
	VCVTPH2PS   (R11), Y2
	VFMADD231PS (R8), Y2, Y0

dotssum:
	VADDPS Y1, Y0, Y0
	HSUM8(X0, Y0, X1)
	VMULSS X9, X0, X0
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R10, SI
	DECQ   CX
	JNZ    dotspos

dotsdone:
	VZEROUPPER
	RET

// func axpysF16AVX2(y *float32, a *float32, v *uint16, n, m, stride int)
// y[:m] += sum over p < n of a[p] * v[p*stride:][:m]; m is a multiple of 8.
// y is kept in registers 64 values at a time while the positions stream by.
TEXT ·axpysF16AVX2(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ v+16(FP), SI
	MOVQ m+32(FP), DX
	MOVQ stride+40(FP), R10
	SHLQ $1, R10

axblock:
	CMPQ DX, $64
	JB   axsmall
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7
	MOVQ    a+8(FP), R8
	MOVQ    n+24(FP), CX
	MOVQ    SI, R11
	TESTQ   CX, CX
	JZ      axstore

axpos:
	VBROADCASTSS (R8), Y8
	VCVTPH2PS    (R11), Y9
	VFMADD231PS  Y9, Y8, Y0
	VCVTPH2PS    16(R11), Y10
	VFMADD231PS  Y10, Y8, Y1
	VCVTPH2PS    32(R11), Y11
	VFMADD231PS  Y11, Y8, Y2
	VCVTPH2PS    48(R11), Y12
	VFMADD231PS  Y12, Y8, Y3
	VCVTPH2PS    64(R11), Y9
	VFMADD231PS  Y9, Y8, Y4
	VCVTPH2PS    80(R11), Y10
	VFMADD231PS  Y10, Y8, Y5
	VCVTPH2PS    96(R11), Y11
	VFMADD231PS  Y11, Y8, Y6
	VCVTPH2PS    112(R11), Y12
	VFMADD231PS  Y12, Y8, Y7
	ADDQ         $4, R8
	ADDQ         R10, R11
	DECQ         CX
	JNZ          axpos

axstore:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ    $256, DI
	ADDQ    $128, SI
	SUBQ    $64, DX
	JMP     axblock

axsmall:
	// Blocks of 8.
	CMPQ DX, $8
	JB   axdone2
	VMOVUPS (DI), Y0
	MOVQ    a+8(FP), R8
	MOVQ    n+24(FP), CX
	MOVQ    SI, R11
	TESTQ   CX, CX
	JZ      axstore8

axpos8:
	VBROADCASTSS (R8), Y8
	VCVTPH2PS    (R11), Y9
	VFMADD231PS  Y9, Y8, Y0
	ADDQ         $4, R8
	ADDQ         R10, R11
	DECQ         CX
	JNZ          axpos8

axstore8:
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $16, SI
	SUBQ    $8, DX
	JMP     axsmall

axdone2:
	VZEROUPPER
	RET
