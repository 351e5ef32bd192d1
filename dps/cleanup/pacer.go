package cleanup

import (
	"context"
	"sync"
	"time"
)

// pacer decides when the next request to one service may go. Three rules,
// all driven by the service's 429 answers:
//
//   - Concurrency is AIMD: at most limit requests in flight; limit halves on
//     each throttling episode and grows by about one per round trip of
//     successes (limit += 1/limit per success), up to max.
//   - Retry-After is a pause for everyone: no request goes before it ends.
//   - Once throttled, requests are also paced at the rate the service was
//     seen to allow: the requests it let through (anything but a 429) since
//     the previous episode, divided by the time up to the end of this pause.
//     DPS quotas are operations per minute, so what counts is the rate
//     across the pause, not the burst before it. The pace grows by 1% a
//     second while nothing is throttled, so a lifted quota is found again.
//
// A 429 for a request sent before the current episode began is the same
// congestion seen late; it does not cut again.
type pacer struct {
	now func() time.Time

	mu       sync.Mutex
	released chan struct{} // closed and replaced whenever a slot frees
	max      float64
	limit    float64
	inflight int
	pause    time.Time // no request before this
	rate     float64   // requests a second; 0 = not paced
	nextSend time.Time
	episode  time.Time // when the last throttling episode began
	epoch    time.Time // start of the current measuring interval
	admitted int       // requests the quota let through since epoch
}

// paceGrowth is the pace's additive increase per success: with r successes
// a second it adds 0.01·r a second, 1% a second at any rate.
const paceGrowth = 0.01

// defaultRetryAfter is the pause when a 429 carries no Retry-After.
const defaultRetryAfter = time.Second

func newPacer(max int, now func() time.Time) *pacer {
	t := now()
	return &pacer{now: now, released: make(chan struct{}), max: float64(max), limit: float64(max), epoch: t}
}

// acquire waits for a slot and returns the time the request is sent.
func (p *pacer) acquire(ctx context.Context) (time.Time, error) {
	for {
		p.mu.Lock()
		now := p.now()
		var wait time.Duration
		switch {
		case now.Before(p.pause):
			wait = p.pause.Sub(now)
		case p.rate > 0 && now.Before(p.nextSend):
			wait = p.nextSend.Sub(now)
		case p.inflight >= int(p.limit):
			ch := p.released
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return time.Time{}, ctx.Err()
			}
		default:
			p.inflight++
			if p.rate > 0 {
				p.nextSend = later(p.nextSend, now).Add(time.Duration(float64(time.Second) / p.rate))
			}
			p.mu.Unlock()
			return now, nil
		}
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return time.Time{}, ctx.Err()
		}
	}
}

// result is what became of a request, as far as pacing goes.
type result int

const (
	resultOK        result = iota // the service did the work (or said it was done)
	resultThrottled               // 429
	resultOther                   // a fault or error: says nothing about the quota
)

// release frees the slot of a request sent at sent.
func (p *pacer) release(sent time.Time, r result, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	close(p.released)
	p.released = make(chan struct{})
	switch r {
	case resultOK:
		p.admitted++
		p.limit = min(p.max, p.limit+1/p.limit)
		if p.rate > 0 {
			p.rate += paceGrowth
		}
	case resultOther:
		p.admitted++ // a fault still passed the quota
	case resultThrottled:
		if sent.Before(p.episode) {
			return
		}
		now := p.now()
		if retryAfter <= 0 {
			retryAfter = defaultRetryAfter
		}
		p.episode = now
		p.pause = later(p.pause, now.Add(retryAfter))
		p.limit = max(1, p.limit/2)
		span := p.pause.Sub(p.epoch).Seconds()
		switch {
		case p.admitted > 0 && span > 0:
			p.rate = max(float64(p.admitted)/span, minRate)
		case p.rate > 0:
			p.rate = max(p.rate/2, minRate) // nothing got through: halve
		}
		p.epoch, p.admitted = p.pause, 0
		p.nextSend = p.pause
	}
}

// minRate is the slowest pace: a service that lets nothing through is still
// asked about twice a second.
const minRate = 0.5

// state reports the current concurrency limit and pace (0 = unpaced).
func (p *pacer) state() (limit int, rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int(p.limit), p.rate
}

// pausedUntil is the end of the current Retry-After pause (zero when none).
func (p *pacer) pausedUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pause
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
