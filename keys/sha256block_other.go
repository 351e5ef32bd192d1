//go:build !amd64 || purego

package keys

// sha256Digest is nil here: no SHA-256 assembly of ours for this platform, so
// the Deriver uses crypto/hmac.
var sha256Digest func(out *[32]byte, h *[8]uint32, p []byte)
