//go:build !purego

package keys

// sha256Digest is digestSHANI where the CPU has the SHA extensions, else nil.
var sha256Digest = func() func(*[32]byte, *[8]uint32, []byte) {
	if hasSHANI() {
		return digestSHANI
	}
	return nil
}()

// digestSHANI compresses the whole 64-byte blocks of p, starting from the
// chaining value h, and writes the resulting chaining value to out as
// big-endian bytes: the SHA-256 digest when p ends with SHA-256's padding.
//
//go:noescape
func digestSHANI(out *[32]byte, h *[8]uint32, p []byte)

func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// hasSHANI reports the SHA extensions and the SSSE3 and SSE4.1 instructions
// digestSHANI also uses (CPUID leaf 1 ECX bits 9 and 19, leaf 7 EBX bit 29).
func hasSHANI() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	_, ebx7, _, _ := cpuid(7, 0)
	return ecx1&(1<<9) != 0 && ecx1&(1<<19) != 0 && ebx7&(1<<29) != 0
}
