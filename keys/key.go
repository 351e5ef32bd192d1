// Package keys holds the pure crypto and identity rules of DPS: symmetric keys,
// device-key derivation, registration-ID rules, SAS tokens and connection
// strings. It opens no files and makes no network calls: DeriveStream works
// on the reader and writer it is given.
package keys

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
)

// Key is a symmetric key (an enrollment-group key, a device key or a
// shared-access-policy key). Its printed forms are masked so that a key never
// reaches a log line, an error or a panic by accident; Base64 reveals it.
//
// The bytes are only reachable through a closure: fmt prints a func as an
// address, so even a Key in an unexported struct field (which fmt prints by
// reflection, without calling Format) cannot reveal them, whatever the verb.
// The zero Key holds no key.
type Key struct{ reveal func() []byte }

func newKey(b []byte) Key { return Key{reveal: func() []byte { return b }} }

// Bounds DPS puts on the decoded length of a symmetric key.
const (
	MinKeyBytes       = 16
	MaxKeyBytes       = 64
	GeneratedKeyBytes = 64 // what DPS generates when a create leaves keys out
)

// KeyError says which rule a key broke. It never carries the key itself.
type KeyError struct{ Rule string }

func (e *KeyError) Error() string { return "invalid key: " + e.Rule }

// ParseKey decodes a base64 key strictly: standard alphabet with padding,
// surrounding white space trimmed, any other stray character rejected (the az
// CLI silently drops such characters and derives a wrong key), and a decoded
// length of 16 to 64 bytes.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, &KeyError{Rule: "the key is empty"}
	}
	for i := 0; i < len(s); i++ {
		if !isBase64Char(s[i]) {
			return Key{}, &KeyError{Rule: fmt.Sprintf("character %d is not in the standard base64 alphabet (A-Z a-z 0-9 + / =); copy the key again without line breaks or quotes", i+1)}
		}
	}
	if len(s)%4 != 0 {
		return Key{}, &KeyError{Rule: fmt.Sprintf("base64 length %d is not a multiple of 4: the key is truncated or lost its '=' padding", len(s))}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return Key{}, &KeyError{Rule: "'=' padding appears in the middle or the last character has stray bits; the key is not canonical base64"}
	}
	if len(b) < MinKeyBytes || len(b) > MaxKeyBytes {
		return Key{}, &KeyError{Rule: fmt.Sprintf("it decodes to %d bytes; DPS keys are %d to %d bytes", len(b), MinKeyBytes, MaxKeyBytes)}
	}
	return newKey(b), nil
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

// KeyFromBytes wraps raw key bytes (for example a derived device key).
func KeyFromBytes(b []byte) Key { return newKey(append([]byte(nil), b...)) }

// GenerateKey returns a new random 64-byte key, as DPS generates.
func GenerateKey() Key {
	b := make([]byte, GeneratedKeyBytes)
	rand.Read(b) // never fails (crypto/rand documents a fatal error otherwise)
	return newKey(b)
}

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return len(k.Bytes()) == 0 }

// Bytes returns the raw key bytes. Callers must not modify them.
func (k Key) Bytes() []byte {
	if k.reveal == nil {
		return nil
	}
	return k.reveal()
}

// Base64 reveals the key in its standard base64 form.
func (k Key) Base64() string { return base64.StdEncoding.EncodeToString(k.Bytes()) }

// Equal compares two keys in constant time.
func (k Key) Equal(o Key) bool { return subtle.ConstantTimeCompare(k.Bytes(), o.Bytes()) == 1 }

// String masks the key.
func (k Key) String() string {
	if k.IsZero() {
		return ""
	}
	return Mask
}

// GoString masks the key for %#v.
func (k Key) GoString() string { return "keys.Key{" + k.String() + "}" }

// Format masks the key for every fmt verb, %x and %q included.
func (k Key) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, k.GoString())
	case verb == 'q':
		fmt.Fprintf(f, "%q", k.String())
	default:
		fmt.Fprint(f, k.String())
	}
}

// MarshalText masks the key so that encoding a struct that holds one (JSON
// logs, slog attributes) cannot reveal it. Use Base64 on purpose.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Mask is what a key looks like when printed.
const Mask = "••••••••"

// MaskURL hides a URL's query and password: a webhook's query usually
// carries its function key (?code=...).
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return Mask
	}
	hasQuery := u.RawQuery != "" || u.ForceQuery
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	s := u.Redacted()
	if hasQuery {
		s += "?" + Mask
	}
	return s
}
