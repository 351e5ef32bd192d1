package cleanup

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

var benchRecords = flag.Int("cleanup.records", 100000, "orphaned records BenchmarkRunDeletes deletes")

// BenchmarkRunDeletes deletes -cleanup.records orphaned records (100,000 by
// default) from an unthrottled emulator and reports records/s, at several
// concurrency ceilings side by side. Seeding and scanning are outside the
// timed part.
func BenchmarkRunDeletes(b *testing.B) {
	for _, c := range []int{16, DefaultConcurrency, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) { benchmarkRunDeletes(b, c) })
	}
}

func benchmarkRunDeletes(b *testing.B, concurrency int) {
	for range b.N {
		b.StopTimer()
		f := startFixture(b, emulator.Options{})
		ctx := context.Background()
		f.seed(b, "gone", *benchRecords)
		plan, err := f.engine.Scan(ctx, ScanOptions{GroupIDs: []string{"gone"}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		job, err := f.engine.NewJob(plan, Selection{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		sum, err := f.engine.Run(ctx, job, RunOptions{Concurrency: concurrency}, nil)
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		if got := sum.Outcomes[DeleteRecord][OutcomeDeleted]; got != *benchRecords {
			b.Fatalf("deleted %d of %d", got, *benchRecords)
		}
		b.ReportMetric(float64(*benchRecords)/elapsed.Seconds(), "records/s")
	}
}

var throttledFor = flag.Duration("cleanup.throttled-for", time.Minute, "how long BenchmarkRunThrottled measures after the first back-off")

// BenchmarkRunThrottled deletes against an emulator throttled to 1,000
// operations a minute, as DPS is by default, and reports the rate of
// successful deletes after the first back-off as a share of the allowed
// rate (allowed-share; the issue asks for ≥ 0.9).
func BenchmarkRunThrottled(b *testing.B) {
	const perMinute = 1000
	for range b.N {
		b.StopTimer()
		f := startFixture(b, emulator.Options{ThrottlePerMinute: perMinute})
		orphans := perMinute + int(throttledFor.Seconds()*perMinute/60*1.5) + 100
		f.seed(b, "gone", orphans)
		ctx, cancel := context.WithCancel(context.Background())
		plan, err := f.engine.Scan(ctx, ScanOptions{GroupIDs: []string{"gone"}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		job, err := f.engine.NewJob(plan, Selection{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		// Stop the run once it has been measured long enough after the
		// first 429's pause.
		go func() {
			var pauseEnd time.Time
			for ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				if pauseEnd.IsZero() {
					pauseEnd = firstPauseEnd(f.wire.deletes())
				} else if time.Since(pauseEnd) >= *throttledFor {
					cancel()
				}
			}
		}()
		_, err = f.engine.Run(ctx, job, RunOptions{}, nil)
		end := time.Now()
		cancel()
		if err == nil {
			b.Fatal("the run finished before the measurement did: seed more records")
		}
		b.StopTimer()
		pauseEnd := firstPauseEnd(f.wire.deletes())
		ok, throttled := 0, 0
		for _, x := range f.wire.deletes() {
			if x.sent.Before(pauseEnd) {
				continue
			}
			switch x.status {
			case 204:
				ok++
			case 429:
				throttled++
			}
		}
		rate := float64(ok) / end.Sub(pauseEnd).Seconds()
		b.ReportMetric(rate*60, "deletes/min")
		b.ReportMetric(rate/(perMinute/60.0), "allowed-share")
		b.ReportMetric(float64(throttled), "429s")
	}
}

// firstPauseEnd is when the Retry-After of the first 429 ran out.
func firstPauseEnd(dels []exchange) time.Time {
	for _, x := range dels {
		if x.status == 429 {
			s, _ := strconv.Atoi(x.retryAfter)
			return x.answered.Add(time.Duration(s) * time.Second)
		}
	}
	return time.Time{}
}
