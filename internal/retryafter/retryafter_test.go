package retryafter

import (
	"net/http"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// TestParse: the forms DPS, IoT Hub and proxies send, and what a broken
// one gets.
func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},   // DPS's own: integer seconds
		{"0", 0, true},                 // poll now (the emulator sends it)
		{" 2 ", 2 * time.Second, true}, // OWS around the value
		{"Tue, 01 Dec 2026 12:00:30 GMT", 30 * time.Second, true}, // an HTTP-date (a proxy's)
		{"Tuesday, 01-Dec-26 12:01:00 GMT", time.Minute, true},    // RFC 850, still accepted by RFC 9110
		{"Tue Dec  1 12:00:05 2026", 5 * time.Second, true},       // asctime
		{"Tue, 01 Dec 2026 11:59:00 GMT", 0, true},                // a date past: now
		{"3600", time.Hour, true},                                 // an hour: read as given
		{"86400", Max, true},                                      // a day: capped
		{"99999999999", Max, true},                                // huge: capped, not overflowed
		{"Fri, 01 Dec 2126 12:00:00 GMT", Max, true},              // a date a century away
		{"", 0, false},
		{"-5", 0, false},  // negative: not a delay
		{"+5", 0, false},  // not 1*DIGIT
		{"1.5", 0, false}, // DPS sends whole seconds; Python's int() refuses this too
		{"5s", 0, false},
		{"soon", 0, false},
		{"Tue, 01 Dec 2026 25:00:00 GMT", 0, false},
	} {
		got, ok := Parse(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("Parse(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestResponse: Azure's millisecond headers come first, then Retry-After;
// none, or a bad one, is 0 (each caller has its own default).
func TestResponse(t *testing.T) {
	for _, c := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "3"}, 250 * time.Millisecond},
		{map[string]string{"X-Ms-Retry-After-Ms": "1500"}, 1500 * time.Millisecond},
		{map[string]string{"Retry-After-Ms": "junk", "Retry-After": "2"}, 2 * time.Second},
		{map[string]string{"Retry-After-Ms": "0", "Retry-After": "2"}, 2 * time.Second},
		{map[string]string{"Retry-After": "Tue, 01 Dec 2026 12:00:10 GMT"}, 10 * time.Second},
		{map[string]string{"Retry-After": "garbage"}, 0},
		{map[string]string{"Retry-After": "-1"}, 0},
		{map[string]string{"Retry-After-Ms": "99999999999999999"}, Max},
		{nil, 0},
	} {
		resp := &http.Response{Header: http.Header{}}
		for k, v := range c.h {
			resp.Header.Set(k, v)
		}
		if got := Response(resp, now); got != c.want {
			t.Errorf("%v: %v, want %v", c.h, got, c.want)
		}
	}
	if got := Response(nil, now); got != 0 {
		t.Errorf("no response: %v", got)
	}
}
