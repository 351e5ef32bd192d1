package emulator

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// realism makes the emulator behave like a busy real service: a rate limit
// answered with 429 + Retry-After, and random faults.
type realism struct {
	perMinute int
	faultRate float64
	stats     *stats

	mu     sync.Mutex
	tokens float64   // token bucket: holds up to perMinute, refills perMinute a minute
	last   time.Time // last refill
}

func newRealism(perMinute int, faultRate float64, st *stats) *realism {
	return &realism{perMinute: perMinute, faultRate: faultRate, stats: st, tokens: float64(perMinute), last: time.Now()}
}

// take spends one operation; when none is left it returns how long until one
// is, rounded up to whole seconds as DPS's Retry-After is.
func (x *realism) take(now time.Time) (retryAfter int, ok bool) {
	if x.perMinute <= 0 {
		return 0, true
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	rate := float64(x.perMinute) / 60 // tokens a second
	x.tokens = math.Min(float64(x.perMinute), x.tokens+now.Sub(x.last).Seconds()*rate)
	x.last = now
	if x.tokens >= 1 {
		x.tokens--
		return 0, true
	}
	return max(1, int(math.Ceil((1-x.tokens)/rate-1e-9))), false
}

// wrap applies the throttle and the faults before h. The throttle counts
// operations, as DPS's quota does: service calls and registrations, not a
// device's polls (not billed, limited per device apart, dps-protocol.md §7).
func (x *realism) wrap(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request)) {
	if after, ok := x.spend(r); !ok {
		x.stats.throttledOnce()
		w.Header().Set("Retry-After", strconv.Itoa(after))
		writeError(w, http.StatusTooManyRequests, codeThrottled, "too many requests: the emulator allows "+strconv.Itoa(x.perMinute)+" operations a minute; retry after "+strconv.Itoa(after)+" s")
		return
	}
	if x.faultRate > 0 && rand.Float64() < x.faultRate {
		if rand.IntN(2) == 0 {
			writeError(w, http.StatusInternalServerError, codeInternal, "injected fault (fault rate "+strconv.FormatFloat(x.faultRate, 'g', -1, 64)+")")
			return
		}
		dropConnection(w)
		return
	}
	h(w, r)
}

// dropConnection ends the exchange with no answer: the HTTP/1 connection is
// closed; an HTTP/2 stream is reset.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// spend takes an operation for r unless it is a poll.
func (x *realism) spend(r *http.Request) (retryAfter int, ok bool) {
	if isPoll(r) {
		return 0, true
	}
	return x.take(time.Now())
}

// isPoll reports whether r is a device's operation-status poll, GET
// /{idScope}/registrations/{registrationId}/operations/{operationId}.
func isPoll(r *http.Request) bool {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	return r.Method == http.MethodGet && len(parts) == 5 && strings.EqualFold(parts[1], "registrations") && strings.EqualFold(parts[3], "operations")
}
