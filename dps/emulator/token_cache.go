package emulator

import (
	"sync"
	"time"
)

// verifiedTokens remembers the service SAS tokens that passed every check,
// until they expire. A service client sends one token for many requests
// (the Go clients one a second, azure-iothub one a second, a DPS client one
// an hour), and checking it again costs a parse and an HMAC per request.
// The keys a token is checked against never change while the emulator runs.
type verifiedTokens struct {
	mu sync.Mutex
	m  map[string]time.Time // Authorization header → the token's expiry
}

// The cache's bounds: when full it starts again empty, and a token longer
// than any SDK sends (a key holder can pad one: ParseSAS ignores unknown
// fields) is checked every time instead of held.
const (
	maxVerifiedTokens   = 1024
	maxVerifiedTokenLen = 1024
)

// valid reports whether token passed the checks before and has not expired.
func (v *verifiedTokens) valid(token string, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	exp, ok := v.m[token]
	if ok && !now.Before(exp) {
		delete(v.m, token)
		return false
	}
	return ok
}

// add remembers a token that passed every check.
func (v *verifiedTokens) add(token string, expiry time.Time) {
	if len(token) > maxVerifiedTokenLen {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerifiedTokens {
		v.m = make(map[string]time.Time)
	}
	v.m[token] = expiry
}
