package cleanup

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// Orphans behind a throttle and a 10% fault rate: every orphan is deleted
// exactly once, nothing else is touched, and once the run has backed off the
// first time, fewer than 5% of its requests are answered 429.
//
// The emulator's token bucket lets a minute's worth through at once, then
// refills at perMinute/60 a second. At the size, 20,000 orphans at
// 15,000 a minute, ~7,000 requests are paced at 250/s (~35 s); a run slower
// than 250/s would never be throttled and so prove nothing, which the test
// reports. With -short: 3,000 orphans at 2,400 a minute (~900 paced at 40/s).
func TestRunUnderThrottleAndFaults(t *testing.T) {
	orphans, perMinute := 20000, 15000
	if testing.Short() {
		orphans, perMinute = 3000, 2400
	}
	f := startFixture(t, emulator.Options{ThrottlePerMinute: perMinute, FaultRate: 0.1})
	ctx := context.Background()
	f.createGroup(t, "live")
	f.seed(t, "live", 200)
	f.seed(t, "gone", orphans)
	j, err := OpenJournal(f.engine.StateDir, f.dps.Host())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Seen("gone"); err != nil {
		t.Fatal(err)
	}
	plan, err := f.engine.Scan(ctx, ScanOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	job, err := f.engine.NewJob(plan, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Actions) != orphans {
		t.Fatalf("job has %d actions, want %d", len(job.Actions), orphans)
	}
	events := make(chan Event, 16)
	wait := collect(events)
	sum, err := f.engine.Run(ctx, job, RunOptions{}, events)
	evs := wait()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcomes[DeleteRecord][OutcomeDeleted] != orphans || len(sum.Failures) != 0 {
		t.Errorf("outcomes %v, %d failures (first: %v); want all %d deleted", sum.Outcomes, len(sum.Failures), first(sum.Failures), orphans)
	}
	st := f.emu.Stats()
	for i := range orphans {
		id := "gone-" + pad7(i)
		if n := st.RegistrationDeletes[id]; n != 1 {
			t.Fatalf("orphan %s deleted %d times, want 1", id, n)
		}
	}
	if len(st.RegistrationDeletes) != orphans {
		t.Errorf("%d records deleted, want exactly the %d orphans", len(st.RegistrationDeletes), orphans)
	}
	if n := len(f.records(t, "live")); n != 200 {
		t.Errorf("live group has %d records, want 200", n)
	}

	// 429s once the run has backed off: requests sent after the first
	// throttling pause ended.
	dels := f.wire.deletes()
	pauseEnd := firstPauseEnd(dels)
	if pauseEnd.IsZero() {
		t.Fatalf("the service never throttled, so the test proves nothing: the run was slower than the %d/s refill", perMinute/60)
	}
	var after, throttled int
	for _, x := range dels {
		if !x.sent.Before(pauseEnd) {
			after++
			if x.status == http.StatusTooManyRequests {
				throttled++
			}
		}
	}
	share := float64(throttled) / float64(after)
	t.Logf("%d deletes sent, %d after the first back-off, %d of them throttled (%.2f%%); %d faults retried; %s",
		len(dels), after, throttled, 100*share, lastProgress(evs).Faults, sum.Elapsed.Round(time.Millisecond))
	if after < (orphans-perMinute)/2 || share >= 0.05 {
		t.Errorf("after the first back-off %d of %d requests were throttled (%.1f%%), want < 5%% of a real sample", throttled, after, 100*share)
	}
	p := lastProgress(evs)
	if !p.Final || p.Done != orphans || p.Throttled == 0 || p.Faults == 0 {
		t.Errorf("final progress %+v: want Final, Done=%d, some throttled, some faults", p, orphans)
	}
}

func pad7(i int) string {
	s := strconv.Itoa(i)
	return strings.Repeat("0", 7-len(s)) + s
}

func first(fs []Failure) any {
	if len(fs) == 0 {
		return nil
	}
	return fs[0]
}

func lastProgress(evs []Event) Progress {
	var p Progress
	for _, ev := range evs {
		if q, ok := ev.(Progress); ok {
			p = q
		}
	}
	return p
}
