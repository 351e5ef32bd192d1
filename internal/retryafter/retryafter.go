// Package retryafter reads the wait a throttled (429) or busy answer asks
// for, the one reader of the Retry-After header in dpsconsole: the device
// client's polls, the fleet's pacer and the clean-up engine's.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Max is the longest wait read: a longer one (or a date farther off) is a
// broken value, not a throttle, and would overflow a Duration anyway.
const Max = time.Hour

// Parse reads a Retry-After value as of now: delay-seconds, as DPS and IoT
// Hub send it, or an HTTP-date, as a proxy may (RFC 9110 §10.2.3). A date
// past is 0. ok is false for an empty, negative or unreadable value: the
// caller keeps its own default.
func Parse(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(Max/time.Second) { // only too big a number fails here
			return Max, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), Max), true
}

// Response is the wait resp asks for: Azure's retry-after-ms and
// x-ms-retry-after-ms first (azcore reads them so), then Retry-After; 0
// when it asks for none or says nothing readable.
func Response(resp *http.Response, now time.Time) time.Duration {
	if resp == nil {
		return 0
	}
	for _, h := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		v := strings.TrimSpace(resp.Header.Get(h))
		if !isDigits(v) || v == "0" {
			continue
		}
		ms, err := strconv.ParseUint(v, 10, 64)
		if err != nil || ms > uint64(Max/time.Millisecond) {
			return Max
		}
		return time.Duration(ms) * time.Millisecond
	}
	d, _ := Parse(resp.Header.Get("Retry-After"), now)
	return d
}

// isDigits reports whether s is 1*DIGIT, the form of delay-seconds.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
