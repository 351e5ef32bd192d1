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

// 20,000 orphans behind a throttle (15,000 operations a minute: the first
// 15,000 go at once, the rest at 250/s) and a 10% fault rate: every orphan
// is deleted exactly once, nothing else is touched, and once the run has
// backed off the first time, fewer than 5% of its requests are answered 429.
func TestRunUnderThrottleAndFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about half a minute")
	}
	const orphans, perMinute = 20000, 15000
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
		t.Fatal("the service never throttled, so the test proves nothing: the run was slower than the 250/s refill (is the machine overloaded, or -race on?)")
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
	if after < orphans/10 || share >= 0.05 {
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
