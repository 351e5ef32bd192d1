package fleet

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Schedule is when devices start: a rate in devices a second that goes
// linearly from From to To over Over, then stays at To. The zero Schedule
// starts every device at once (only --concurrency holds them back).
type Schedule struct {
	From, To float64
	Over     time.Duration
}

// Quota is the documented default limit of a DPS instance: 1,000 device
// registrations a minute (dps-protocol.md §7).
var Quota = Schedule{From: 1000.0 / 60, To: 1000.0 / 60}

// Unpaced reports whether the schedule starts every device at once.
func (s Schedule) Unpaced() bool { return s.From == 0 && s.To == 0 }

// At is the time, from the run's start, at which device n (0-based) may
// start: when the integral of the rate reaches n.
func (s Schedule) At(n int) time.Duration {
	if s.Unpaced() || n <= 0 {
		return 0
	}
	x := float64(n)
	d := s.Over.Seconds()
	if d > 0 {
		a, b := s.From, s.To
		inRamp := (a + b) * d / 2 // devices started during the ramp
		if x <= inRamp {
			k := (b - a) / (2 * d) // I(t) = a·t + k·t²
			var t float64
			if math.Abs(k) < 1e-12 {
				t = x / a
			} else {
				t = (-a + math.Sqrt(a*a+4*k*x)) / (2 * k)
			}
			return seconds(t)
		}
		return seconds(d + (x-inRamp)/b)
	}
	return seconds(x / s.To)
}

func seconds(t float64) time.Duration { return time.Duration(t * float64(time.Second)) }

func (s Schedule) String() string {
	switch {
	case s.Unpaced():
		return "unpaced"
	case s.Over > 0:
		return fmt.Sprintf("%s..%s over %s", perSecond(s.From), perSecond(s.To), s.Over)
	}
	return perSecond(s.To)
}

func perSecond(r float64) string {
	if r < 10 && r != math.Trunc(r) {
		return strconv.FormatFloat(r*60, 'f', -1, 64) + "/min"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + "/s"
}

// ParseRate reads "R/s" or "R/min" as devices a second.
func ParseRate(s string) (float64, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	var per float64
	switch strings.ToLower(unit) {
	case "s", "sec":
		per = 1
	case "m", "min":
		per = 60
	}
	r, err := strconv.ParseFloat(num, 64)
	if !ok || per == 0 || err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
		return 0, fmt.Errorf("rate %q: give devices a second or a minute, e.g. 50/s or 1000/min", s)
	}
	return r / per, nil
}

// ParseRamp reads "A..B/s:D" (or /min): from A to B devices a second over D.
func ParseRamp(s string) (Schedule, error) {
	bad := fmt.Errorf("ramp %q: give FROM..TO/UNIT:DURATION, e.g. 0..500/s:60s (TO must be above 0)", s)
	rates, dur, ok := strings.Cut(s, ":")
	from, to, ok2 := strings.Cut(rates, "..")
	if !ok || !ok2 {
		return Schedule{}, bad
	}
	_, unit, _ := strings.Cut(to, "/")
	a, err1 := ParseRate(from + "/" + unit)
	b, err2 := ParseRate(to)
	d, err3 := time.ParseDuration(dur)
	if err1 != nil || err2 != nil || err3 != nil || b <= 0 || d <= 0 {
		return Schedule{}, bad
	}
	return Schedule{From: a, To: b, Over: d}, nil
}

// IsLoopback reports whether a provisioning host[:port] is this machine (an
// emulator), where no DPS quota applies.
func IsLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
