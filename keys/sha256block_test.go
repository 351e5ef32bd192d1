package keys

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// sha256Digest from the IV over a message padded by hand must be SHA-256, for
// every message length from 0 to 5 blocks and beyond, and any bytes.
func TestSHA256Digest(t *testing.T) {
	if sha256Digest == nil {
		t.Skip("no SHA-256 assembly for this CPU; the Deriver uses crypto/hmac")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 5*sha256.BlockSize + 9 {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		padded := append(msg[:n:n], 0x80)
		for len(padded)%sha256.BlockSize != sha256.BlockSize-8 {
			padded = append(padded, 0)
		}
		padded = binary.BigEndian.AppendUint64(padded, uint64(n)*8)
		var got [sha256.Size]byte
		sha256Digest(&got, &sha256IV, padded)
		if want := sha256.Sum256(msg); got != want {
			t.Fatalf("%d bytes: %x, want %x", n, got, want)
		}
	}
	// No whole block: the digest is the chaining value it started from.
	var got [sha256.Size]byte
	sha256Digest(&got, &sha256IV, make([]byte, sha256.BlockSize-1))
	if h := chainOf(got); h != sha256IV {
		t.Errorf("no block: %x, want the IV", h)
	}
}

// Where the CPU lacks the SHA extensions (or with -tags purego) the Deriver
// falls back to crypto/hmac; that path must give the same keys. (Not
// parallel: it swaps a package variable.)
func TestDeriverWithoutSHAExtensions(t *testing.T) {
	saved := sha256Digest
	sha256Digest = nil
	defer func() { sha256Digest = saved }()
	d := mustDeriver(t)
	if d.fast != nil {
		t.Fatal("fast path in use without sha256Digest")
	}
	if k, _ := d.DeviceKey(tutorialRegID); k.Base64() != tutorialDevKey {
		t.Errorf("tutorial vector: %s", k.Base64())
	}
}
