package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const sasPrefix = "SharedAccessSignature "

// SignSAS makes a SAS token for resource, signed with key, valid until expiry.
// keyName becomes skn and is left out when empty (hub device tokens). sr is
// URL-encoded as the Python SDK and url.QueryEscape do, and the signature is
// over sr exactly as it appears in the token.
func SignSAS(resource string, key Key, keyName string, expiry time.Time) string {
	sr := url.QueryEscape(resource)
	se := strconv.FormatInt(expiry.Unix(), 10)
	var b strings.Builder
	b.Grow(len(sasPrefix) + len(sr) + 100 + len(keyName))
	b.WriteString(sasPrefix)
	b.WriteString("sr=")
	b.WriteString(sr)
	b.WriteString("&sig=")
	b.WriteString(url.QueryEscape(base64.StdEncoding.EncodeToString(sasSignature(key, sr, se))))
	b.WriteString("&se=")
	b.WriteString(se)
	if keyName != "" {
		b.WriteString("&skn=")
		b.WriteString(url.QueryEscape(keyName))
	}
	return b.String()
}

// SASSigner signs tokens for one resource, key and policy and keeps the
// last: a token is a function of its expiry, which is whole seconds, so the
// requests of one second share one signature instead of one HMAC each. The
// tokens are byte for byte what SignSAS gives. Safe for concurrent use.
type SASSigner struct {
	resource, keyName string
	key               Key

	mu    sync.Mutex
	se    int64
	token string
}

// NewSASSigner returns a signer for SignSAS's resource, key and keyName.
func NewSASSigner(resource string, key Key, keyName string) *SASSigner {
	return &SASSigner{resource: resource, key: key, keyName: keyName}
}

// Sign returns SignSAS(resource, key, keyName, expiry).
func (s *SASSigner) Sign(expiry time.Time) string {
	se := expiry.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" || s.se != se {
		s.se, s.token = se, SignSAS(s.resource, s.key, s.keyName, expiry)
	}
	return s.token
}

func sasSignature(key Key, rawSr, rawSe string) []byte {
	m := hmac.New(sha256.New, key.Bytes())
	m.Write([]byte(rawSr))
	m.Write([]byte{'\n'})
	m.Write([]byte(rawSe))
	return m.Sum(nil)
}

// SAS is a parsed shared access signature. It keeps sr and se exactly as sent,
// because the signature covers those literal bytes: Node sends sr unencoded,
// Python %2F and C %2f, and all of them must verify.
type SAS struct {
	RawResource string    // sr as it appears in the token
	Resource    string    // sr URL-decoded
	RawExpiry   string    // se as it appears in the token
	Expiry      time.Time // se as a time
	KeyName     string    // skn, URL-decoded; "" when absent
	signature   []byte    // sig, URL- and base64-decoded
}

// SASError says what is wrong with a token without repeating any of it.
type SASError struct{ Reason string }

func (e *SASError) Error() string { return "invalid SAS token: " + e.Reason }

// Sentinel causes, for errors.Is.
var (
	ErrSASExpired   = errors.New("the SAS token has expired")
	ErrSASSignature = errors.New("the SAS signature does not match the key")
	ErrSASResource  = errors.New("the SAS token is for another resource")
)

// ParseSAS parses "SharedAccessSignature k=v&k=v..." with its parameters in any
// order. sr, sig and se are required; skn is optional.
func ParseSAS(token string) (SAS, error) {
	token = strings.TrimSpace(token)
	rest, ok := strings.CutPrefix(token, sasPrefix)
	if !ok {
		return SAS{}, &SASError{Reason: `it must start with "SharedAccessSignature "`}
	}
	var t SAS
	var seen [4]bool // sr, sig, se, skn
	n := 0
	for part := range strings.SplitSeq(rest, "&") {
		n++
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			// Name the position only: the part may be a piece of the signature.
			return SAS{}, &SASError{Reason: fmt.Sprintf("parameter %d has no '='; the form is sr=...&sig=...&se=...[&skn=...]", n)}
		}
		i := slices.Index(sasParams[:], k)
		if i < 0 {
			continue // tolerate parameters we do not use
		}
		if seen[i] {
			return SAS{}, &SASError{Reason: fmt.Sprintf("parameter %s appears twice", k)}
		}
		seen[i] = true
		switch k {
		case "sr":
			dec, err := url.QueryUnescape(v)
			if err != nil {
				return SAS{}, &SASError{Reason: "sr is not valid URL encoding"}
			}
			if dec == "" {
				return SAS{}, &SASError{Reason: "sr is empty; it names the resource the token is for"}
			}
			t.RawResource, t.Resource = v, dec
		case "sig":
			// PathUnescape keeps a '+' that a client left unencoded: in base64
			// it is never a space.
			dec, err := url.PathUnescape(v)
			if err != nil {
				return SAS{}, &SASError{Reason: "sig is not valid URL encoding"}
			}
			sig, err := base64.StdEncoding.DecodeString(dec)
			if err != nil || len(sig) != sha256.Size {
				return SAS{}, &SASError{Reason: "sig is not a base64 HMAC-SHA256 signature"}
			}
			t.signature = sig
		case "se":
			n, err := strconv.ParseInt(v, 10, 64)
			if (errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(v, "-")) || (err == nil && n > maxSASExpiry) {
				return SAS{}, &SASError{Reason: "se is too large to be a time: the latest expiry is " + time.Unix(maxSASExpiry, 0).UTC().Format(time.RFC3339)}
			}
			if err != nil || n < 0 {
				return SAS{}, &SASError{Reason: "se must be the expiry in whole seconds since 1970"}
			}
			t.RawExpiry, t.Expiry = v, time.Unix(n, 0)
		case "skn":
			dec, err := url.QueryUnescape(v)
			if err != nil {
				return SAS{}, &SASError{Reason: "skn is not valid URL encoding"}
			}
			t.KeyName = dec
		}
	}
	for i, name := range []string{"sr", "sig", "se"} {
		if !seen[i] {
			return SAS{}, &SASError{Reason: "parameter " + name + " is missing"}
		}
	}
	return t, nil
}

// maxSASExpiry is the latest se ParseSAS takes, 9999-12-31T23:59:59Z: past
// it a time no longer prints as a date (se=2^63-1 would read as "expired in
// the year 292277026596").
var maxSASExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()

// sasParams are the parameters ParseSAS reads, in the order of its seen array.
var sasParams = [...]string{"sr", "sig", "se", "skn"}

// Verify checks the token the way DPS does: the HMAC over the literal sr and
// se, compared in constant time; the expiry against now; and the decoded sr,
// case-insensitively, against resource (equal, or a path-segment prefix of it).
func (t SAS) Verify(key Key, resource string, now time.Time) error {
	if !hmac.Equal(sasSignature(key, t.RawResource, t.RawExpiry), t.signature) {
		return ErrSASSignature
	}
	if !now.Before(t.Expiry) {
		return fmt.Errorf("%w (at %s); sign a new one", ErrSASExpired, t.Expiry.UTC().Format(time.RFC3339))
	}
	if !t.Covers(resource) {
		return fmt.Errorf("%w: it names %q, not %q", ErrSASResource, t.Resource, resource)
	}
	return nil
}

// SignatureMatches reports whether key signed the token, ignoring expiry and
// resource. The emulator uses it to find which candidate key a device holds.
func (t SAS) SignatureMatches(key Key) bool {
	return subtle.ConstantTimeCompare(sasSignature(key, t.RawResource, t.RawExpiry), t.signature) == 1
}

// Covers reports whether the token's resource is resource or a path-segment
// prefix of it, compared case-insensitively.
func (t SAS) Covers(resource string) bool {
	sr := strings.TrimSuffix(t.Resource, "/")
	if len(resource) < len(sr) || !strings.EqualFold(resource[:len(sr)], sr) {
		return false
	}
	return len(resource) == len(sr) || resource[len(sr)] == '/'
}
