package fleet

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkSnapshot is what a dashboard pays per frame: a snapshot of a
// 10,000-device run (counts, rate, latency percentiles), which holds the
// tally's lock the devices report through.
func BenchmarkSnapshot(b *testing.B) {
	t := newTally(10000, func(i int) string { return "d-" + strconv.Itoa(i) })
	for i := range 10000 {
		t.add(logLine{N: i, Outcome: OutcomeAssigned, Hub: "hub" + strconv.Itoa(i%2), Millis: int64(1000 + i%900)}, true)
	}
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		t.snapshot(time.Now(), time.Since(start))
	}
}
