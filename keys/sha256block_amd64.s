//go:build !purego

#include "textflag.h"

// SHA-256 block compression with the x86 SHA extensions. The instruction
// sequence is Intel's (Gulley et al., "Intel SHA Extensions", 2013), the one
// Go's crypto/sha256 uses; only SSE encodings, so no AVX or OS support is
// needed beyond what amd64 guarantees.
//
// Registers: X1 = ABEF, X2 = CDGH (the state in the order SHA256RNDS2 wants),
// X0 = message words plus round constants (implicit operand of SHA256RNDS2),
// X3-X6 = four message-schedule words at a time, X7 = scratch,
// X8 = byte-swap mask, X9/X10 = the state at the start of the block.

// ROUNDS runs four rounds on the message words in msg with constants at k.
#define ROUNDS(msg, k) \
	MOVO        msg, X0; \
	PADDD       k(AX), X0; \
	SHA256RNDS2 X0, X1, X2; \
	PSHUFD      $0x0e, X0, X0; \
	SHA256RNDS2 X0, X2, X1

// LOAD reads four big-endian message words at offset off of the block.
#define LOAD(off, msg) \
	MOVOU  off(SI), msg; \
	PSHUFB X8, msg

// SCHEDULE finishes the next four schedule words in next (which already holds
// SHA256MSG1 of the words four groups back) and starts those of prev's group.
#define SCHEDULE(cur, prev, next) \
	MOVO       cur, X7; \
	PALIGNR    $4, prev, X7; \
	PADDD      X7, next; \
	SHA256MSG2 cur, next; \
	SHA256MSG1 cur, prev

// func digestSHANI(out *[32]byte, h *[8]uint32, p []byte)
TEXT ·digestSHANI(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ h+8(FP), BX
	MOVQ p_base+16(FP), SI
	MOVQ p_len+24(FP), DX
	ANDQ $~63, DX
	ADDQ SI, DX

	MOVOU   (BX), X1
	MOVOU   16(BX), X2
	PSHUFD  $0xb1, X1, X1 // CDAB
	PSHUFD  $0x1b, X2, X2 // EFGH
	MOVO    X1, X7
	PALIGNR $8, X2, X1    // ABEF
	PBLENDW $0xf0, X7, X2 // CDGH
	MOVOU   flipMask<>(SB), X8
	LEAQ    k256<>(SB), AX

	CMPQ SI, DX
	JEQ  store

loop:
	MOVO X1, X9
	MOVO X2, X10

	LOAD(0, X3)
	ROUNDS(X3, 0)
	LOAD(16, X4)
	ROUNDS(X4, 16)
	SHA256MSG1 X4, X3
	LOAD(32, X5)
	ROUNDS(X5, 32)
	SHA256MSG1 X5, X4
	LOAD(48, X6)
	ROUNDS(X6, 48)
	SCHEDULE(X6, X5, X3)
	ROUNDS(X3, 64)
	SCHEDULE(X3, X6, X4)
	ROUNDS(X4, 80)
	SCHEDULE(X4, X3, X5)
	ROUNDS(X5, 96)
	SCHEDULE(X5, X4, X6)
	ROUNDS(X6, 112)
	SCHEDULE(X6, X5, X3)
	ROUNDS(X3, 128)
	SCHEDULE(X3, X6, X4)
	ROUNDS(X4, 144)
	SCHEDULE(X4, X3, X5)
	ROUNDS(X5, 160)
	SCHEDULE(X5, X4, X6)
	ROUNDS(X6, 176)
	SCHEDULE(X6, X5, X3)
	ROUNDS(X3, 192)
	SCHEDULE(X3, X6, X4)
	ROUNDS(X4, 208)
	SCHEDULE(X4, X3, X5)
	ROUNDS(X5, 224)
	SCHEDULE(X5, X4, X6)
	ROUNDS(X6, 240)

	PADDD X9, X1
	PADDD X10, X2
	ADDQ  $64, SI
	CMPQ  SI, DX
	JNE   loop

store:
	PSHUFD  $0x1b, X1, X1 // FEBA
	PSHUFD  $0xb1, X2, X2 // DCHG
	MOVO    X1, X7
	PBLENDW $0xf0, X2, X1 // DCBA
	PALIGNR $8, X7, X2    // HGFE
	PSHUFB  X8, X1        // big-endian bytes
	PSHUFB  X8, X2
	MOVOU   X1, (DI)
	MOVOU   X2, 16(DI)
	RET

// func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL subleaf+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// PSHUFB mask turning little-endian loads into big-endian words.
DATA flipMask<>+0(SB)/8, $0x0405060700010203
DATA flipMask<>+8(SB)/8, $0x0c0d0e0f08090a0b
GLOBL flipMask<>(SB), RODATA|NOPTR, $16

// The 64 SHA-256 round constants (FIPS 180-4 §4.2.2).
DATA k256<>+0(SB)/4, $0x428a2f98
DATA k256<>+4(SB)/4, $0x71374491
DATA k256<>+8(SB)/4, $0xb5c0fbcf
DATA k256<>+12(SB)/4, $0xe9b5dba5
DATA k256<>+16(SB)/4, $0x3956c25b
DATA k256<>+20(SB)/4, $0x59f111f1
DATA k256<>+24(SB)/4, $0x923f82a4
DATA k256<>+28(SB)/4, $0xab1c5ed5
DATA k256<>+32(SB)/4, $0xd807aa98
DATA k256<>+36(SB)/4, $0x12835b01
DATA k256<>+40(SB)/4, $0x243185be
DATA k256<>+44(SB)/4, $0x550c7dc3
DATA k256<>+48(SB)/4, $0x72be5d74
DATA k256<>+52(SB)/4, $0x80deb1fe
DATA k256<>+56(SB)/4, $0x9bdc06a7
DATA k256<>+60(SB)/4, $0xc19bf174
DATA k256<>+64(SB)/4, $0xe49b69c1
DATA k256<>+68(SB)/4, $0xefbe4786
DATA k256<>+72(SB)/4, $0x0fc19dc6
DATA k256<>+76(SB)/4, $0x240ca1cc
DATA k256<>+80(SB)/4, $0x2de92c6f
DATA k256<>+84(SB)/4, $0x4a7484aa
DATA k256<>+88(SB)/4, $0x5cb0a9dc
DATA k256<>+92(SB)/4, $0x76f988da
DATA k256<>+96(SB)/4, $0x983e5152
DATA k256<>+100(SB)/4, $0xa831c66d
DATA k256<>+104(SB)/4, $0xb00327c8
DATA k256<>+108(SB)/4, $0xbf597fc7
DATA k256<>+112(SB)/4, $0xc6e00bf3
DATA k256<>+116(SB)/4, $0xd5a79147
DATA k256<>+120(SB)/4, $0x06ca6351
DATA k256<>+124(SB)/4, $0x14292967
DATA k256<>+128(SB)/4, $0x27b70a85
DATA k256<>+132(SB)/4, $0x2e1b2138
DATA k256<>+136(SB)/4, $0x4d2c6dfc
DATA k256<>+140(SB)/4, $0x53380d13
DATA k256<>+144(SB)/4, $0x650a7354
DATA k256<>+148(SB)/4, $0x766a0abb
DATA k256<>+152(SB)/4, $0x81c2c92e
DATA k256<>+156(SB)/4, $0x92722c85
DATA k256<>+160(SB)/4, $0xa2bfe8a1
DATA k256<>+164(SB)/4, $0xa81a664b
DATA k256<>+168(SB)/4, $0xc24b8b70
DATA k256<>+172(SB)/4, $0xc76c51a3
DATA k256<>+176(SB)/4, $0xd192e819
DATA k256<>+180(SB)/4, $0xd6990624
DATA k256<>+184(SB)/4, $0xf40e3585
DATA k256<>+188(SB)/4, $0x106aa070
DATA k256<>+192(SB)/4, $0x19a4c116
DATA k256<>+196(SB)/4, $0x1e376c08
DATA k256<>+200(SB)/4, $0x2748774c
DATA k256<>+204(SB)/4, $0x34b0bcb5
DATA k256<>+208(SB)/4, $0x391c0cb3
DATA k256<>+212(SB)/4, $0x4ed8aa4a
DATA k256<>+216(SB)/4, $0x5b9cca4f
DATA k256<>+220(SB)/4, $0x682e6ff3
DATA k256<>+224(SB)/4, $0x748f82ee
DATA k256<>+228(SB)/4, $0x78a5636f
DATA k256<>+232(SB)/4, $0x84c87814
DATA k256<>+236(SB)/4, $0x8cc70208
DATA k256<>+240(SB)/4, $0x90befffa
DATA k256<>+244(SB)/4, $0xa4506ceb
DATA k256<>+248(SB)/4, $0xbef9a3f7
DATA k256<>+252(SB)/4, $0xc67178f2
GLOBL k256<>(SB), RODATA|NOPTR, $256
