package cleanup

import (
	"context"
	"math"
	"testing"
	"time"
)

// fakeClock moves on a microsecond at each reading, as a real one would
// between two events.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func TestPacerBacksOffAndRecovers(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	p := newPacer(16, clock.now)
	ctx, cancelAll := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelAll()

	// 1,000 requests go through in the first second.
	for range 1000 {
		sent, err := p.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.release(sent, resultOK, 0)
	}
	clock.t = clock.t.Add(time.Second)
	// Three requests in flight; the first 429 asks for 59 s.
	var sent [3]time.Time
	for i := range sent {
		sent[i], _ = p.acquire(ctx)
	}
	p.release(sent[0], resultThrottled, 59*time.Second)
	limit, rate := p.state()
	if limit != 8 {
		t.Errorf("limit after one episode = %d, want 16/2 = 8", limit)
	}
	// 1,000 let through over the 60 s up to the end of the pause.
	if math.Abs(rate-1000.0/60) > 0.01 {
		t.Errorf("pace = %.3f/s, want %.3f (1,000 per minute)", rate, 1000.0/60)
	}
	// The other two were sent before the episode began: no further cut.
	p.release(sent[1], resultThrottled, 59*time.Second)
	p.release(sent[2], resultThrottled, 59*time.Second)
	if limit, _ := p.state(); limit != 8 {
		t.Errorf("late 429s cut the limit to %d", limit)
	}

	// Nothing goes before the pause ends.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.acquire(short); err == nil {
		t.Error("a request went during the Retry-After pause")
	}
	clock.t = clock.t.Add(59 * time.Second)
	first, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.release(first, resultOK, 0)
	// Paced: the next one must wait 1/rate.
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := p.acquire(short2); err == nil {
		t.Error("a second request went at once although paced at 16.7/s")
	}

	// Recovery: successes raise the limit back to the ceiling and the pace
	// by 1% of itself per second of successes.
	before := rate
	for range 200 {
		clock.t = clock.t.Add(time.Second)
		s, err := p.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.release(s, resultOK, 0)
	}
	limit, rate = p.state()
	if limit != 16 || rate <= before {
		t.Errorf("after 200 successes: limit %d, pace %.2f (was %.2f); want 16 and higher", limit, rate, before)
	}

	// An episode in which nothing got through halves the pace. (The clock
	// is moved past every wait: the pacer's timers run on real time.)
	clock.t = clock.t.Add(time.Second)
	s, _ := p.acquire(ctx)
	p.release(s, resultThrottled, time.Second)
	_, paced := p.state()
	clock.t = clock.t.Add(5 * time.Second)
	s, _ = p.acquire(ctx)
	p.release(s, resultThrottled, time.Second)
	if _, r := p.state(); math.Abs(r-paced/2) > 0.01 {
		t.Errorf("pace after an empty episode = %.2f, want half of %.2f", r, paced)
	}
}
