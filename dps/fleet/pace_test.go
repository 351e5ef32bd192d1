package fleet

import (
	"math"
	"testing"
	"time"
)

func TestParseRateAndRamp(t *testing.T) {
	for in, want := range map[string]float64{"50/s": 50, "1000/min": 1000.0 / 60, "0.5/s": 0.5, " 60/m ": 1} {
		got, err := ParseRate(in)
		if err != nil || math.Abs(got-want) > 1e-9 {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"50", "50/h", "-1/s", "x/s", "", "NaN/s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
	s, err := ParseRamp("0..500/s:60s")
	if err != nil || s != (Schedule{From: 0, To: 500, Over: time.Minute}) {
		t.Errorf("ParseRamp = %+v, %v", s, err)
	}
	s, err = ParseRamp("60..600/min:2m")
	if err != nil || s != (Schedule{From: 1, To: 10, Over: 2 * time.Minute}) {
		t.Errorf("ParseRamp /min = %+v, %v", s, err)
	}
	for _, in := range []string{"0..500/s", "500/s:60s", "0..0/s:10s", "0..500/s:x", "0..500/s:-1s"} {
		if _, err := ParseRamp(in); err == nil {
			t.Errorf("ParseRamp(%q) accepted", in)
		}
	}
}

// TestScheduleAt: the start times invert the integral of the rate.
func TestScheduleAt(t *testing.T) {
	constant := Schedule{From: 10, To: 10}
	if got := constant.At(25); got != 2500*time.Millisecond {
		t.Errorf("10/s: device 25 at %v", got)
	}
	if (Schedule{}).At(1000) != 0 {
		t.Error("unpaced schedule waits")
	}
	// 0..100/s over 10 s starts 500 devices in the ramp: I(t) = 5t².
	ramp := Schedule{From: 0, To: 100, Over: 10 * time.Second}
	for n, want := range map[int]time.Duration{5: time.Second, 20: 2 * time.Second, 500: 10 * time.Second, 600: 11 * time.Second} {
		if got := ramp.At(n); (got - want).Abs() > time.Millisecond {
			t.Errorf("ramp: device %d at %v, want %v", n, got, want)
		}
	}
	down := Schedule{From: 100, To: 10, Over: 10 * time.Second} // I(10) = 550
	if got := down.At(550); (got - 10*time.Second).Abs() > time.Millisecond {
		t.Errorf("ramp down: device 550 at %v", got)
	}
	prev := time.Duration(-1)
	for n := range 700 {
		if at := down.At(n); at < prev {
			t.Fatalf("ramp down goes back in time at %d", n)
		} else {
			prev = at
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1:4443": true, "localhost": true, "[::1]:443": true, "::1": true,
		"global.azure-devices-provisioning.net": false, "10.0.0.1:443": false} {
		if IsLoopback(host) != want {
			t.Errorf("IsLoopback(%q) = %v", host, !want)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{.5: 500 * time.Millisecond, .95: 950 * time.Millisecond, .99: 990 * time.Millisecond} {
		got := h.quantile(q)
		if math.Abs(float64(got-want))/float64(want) > 0.02 {
			t.Errorf("p%v = %v, want %v ± 2 %%", q*100, got, want)
		}
	}
	if h.quantile(1) != time.Second || h.max != time.Second {
		t.Errorf("max %v", h.quantile(1))
	}
}
