package cleanup

import (
	"context"
	"time"
)

// Pacer is cleanup's request pacer for other engines that meet the same DPS
// quotas (dps/fleet): AIMD concurrency, a Retry-After pause for everyone,
// and once throttled a pace at the rate the service was seen to allow.
type Pacer struct{ p *pacer }

// NewPacer returns a pacer that allows max requests in flight.
func NewPacer(max int) *Pacer { return &Pacer{newPacer(max, time.Now)} }

// Acquire waits for a slot and returns the time the request is sent.
func (p *Pacer) Acquire(ctx context.Context) (time.Time, error) { return p.p.acquire(ctx) }

// Release frees the slot of a request sent at sent: throttled is a 429 with
// its Retry-After; failed is a fault that says nothing about the quota.
func (p *Pacer) Release(sent time.Time, throttled, failed bool, retryAfter time.Duration) {
	r := resultOK
	switch {
	case throttled:
		r = resultThrottled
	case failed:
		r = resultOther
	}
	p.p.release(sent, r, retryAfter)
}

// State reports the concurrency limit and pace (requests a second, 0 = unpaced).
func (p *Pacer) State() (limit int, rate float64) { return p.p.state() }

// WriteFileSynced writes a file whole or not at all (temp file, fsync,
// rename, fsync of the directory), as job files are written.
func WriteFileSynced(path string, data []byte) error { return writeFileSynced(path, data) }
