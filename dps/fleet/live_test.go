package fleet_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/fleet"
	"github.com/dpsconsole/dpsconsole/keys"
)

// TestLiveBoardFollowsTheRun: the dashboard's feed counts every finished
// device in its per-second series, bins the latencies and keeps the
// slowest devices with their steps, and the failed ones with their error.
func TestLiveBoardFollowsTheRun(t *testing.T) {
	f := start(t, emulator.Options{})
	cfg := f.config(t, 20)
	live := fleet.NewLive()
	if b := live.Board(); b.Total != 0 {
		t.Fatalf("a board before the run: %+v", b)
	}
	cfg.Live = live
	if _, err := fleet.Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	b := live.Board()
	sum := 0
	for _, n := range b.PerSecond {
		sum += n
	}
	if b.Done != 20 || b.Assigned != 20 || sum != 20 {
		t.Fatalf("board: done %d assigned %d, per second %v", b.Done, b.Assigned, b.PerSecond)
	}
	inBars := 0
	for _, bar := range b.Histogram {
		inBars += bar.Count
		if bar.Upper < bar.Lower {
			t.Errorf("bar %+v", bar)
		}
	}
	if inBars != 20 || len(b.Histogram) == 0 || len(b.Histogram) > fleet.HistogramBars {
		t.Errorf("histogram of %d devices in %d bars: %+v", inBars, len(b.Histogram), b.Histogram)
	}
	if len(b.Slowest) != 20 || b.Slowest[0].Latency < b.Slowest[19].Latency {
		t.Fatalf("slowest: %d, not slowest first", len(b.Slowest))
	}
	var steps []string
	for _, e := range b.Slowest[0].Events {
		steps = append(steps, e.What)
	}
	tl := strings.Join(steps, "; ")
	for _, want := range []string{"request sent", "polled", "assigned to "} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline of %s lacks %q: %s", b.Slowest[0].ID, want, tl)
		}
	}
	if len(b.ByHub) < 2 || len(b.ByStatus) != 1 {
		t.Errorf("by hub %v, by status %v", b.ByHub, b.ByStatus)
	}

	// A wrong group key: every device refused, each kept with its error.
	f2 := start(t, emulator.Options{})
	cfg = f2.config(t, 5)
	cfg.GroupKey, _ = keys.ParseKey(strings.Repeat("A", 86) + "==")
	live = fleet.NewLive()
	cfg.Live = live
	fleet.Run(t.Context(), cfg)
	b = live.Board()
	if b.Failed != 5 || len(b.NotAssigned) != 5 || b.NotAssigned[0].Error == "" {
		t.Fatalf("failed: %d, %+v", b.Failed, b.NotAssigned)
	}
	last := b.NotAssigned[0].Events[len(b.NotAssigned[0].Events)-1]
	if !last.Err || !strings.Contains(last.What, b.NotAssigned[0].Error) {
		t.Errorf("a failed device's timeline ends with %+v", last)
	}
}

// TestOptionsShareTheFlagsTexts: a form's fields go through the flags'
// parsers and checks, with the command line's texts, naming the field.
func TestOptionsShareTheFlagsTexts(t *testing.T) {
	for _, c := range []struct {
		fields    map[string]string
		opt, text string
	}{
		{map[string]string{"devices": "3"}, "group", "--group is required"},
		{map[string]string{"group": "g"}, "devices", "--devices is required"},
		{map[string]string{"group": "g", "devices": "x"}, "devices", `invalid argument "x" for "--devices" flag`},
		{map[string]string{"group": "g", "devices": "3", "prefix": "bad id!"}, "prefix", `prefix "bad id!" makes registration ID`},
		{map[string]string{"group": "g", "devices": "3", "transport": "amqp"}, "transport", `--transport "amqp": use https, mqtt or mqtt-ws`},
		{map[string]string{"group": "g", "devices": "3", "rate": "5/s", "ramp": "0..5/s:1s"}, "ramp", "give --rate or --ramp, not both"},
		{map[string]string{"group": "g", "devices": "3", "rate": "fast"}, "rate", "--rate: give devices a second"},
		{map[string]string{"group": "g", "devices": "3", "concurrency": "0"}, "concurrency", "--concurrency must be 1 or more"},
		{map[string]string{"group": "g", "devices": "3", "interval": "2s"}, "interval", "--interval is the wait between telemetry messages"},
	} {
		_, err := fleet.ParseOptions(c.fields)
		var oe *fleet.OptionError
		if !errors.As(err, &oe) || oe.Option != c.opt || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%v: %v, want %s: %q", c.fields, err, c.opt, c.text)
		}
	}
	o, err := fleet.ParseOptions(map[string]string{"group": "g", "devices": "3", "telemetry": "2", "interval": "10ms", "rate": "5/s"})
	if err != nil || o.Prefix != "sim" || o.Start != 1 || o.Concurrency != 100 || o.Telemetry != 2 || o.Interval.Milliseconds() != 10 {
		t.Fatalf("%+v, %v", o, err)
	}
}

// TestLiveBoardAfterResumeShowsTheWholeRun: a resumed run's board lists
// the devices the run finished before it was stopped (from its log) as
// well as those finished now; the per-second rate counts only the latter.
func TestLiveBoardAfterResumeShowsTheWholeRun(t *testing.T) {
	f := start(t, emulator.Options{AssignmentDelay: 100 * time.Millisecond})
	cfg := f.config(t, 12)
	cfg.Concurrency = 2
	sum, err := runStoppedAfter(t, cfg, 4)
	if !errors.Is(err, fleet.ErrInterrupted) || sum.Finished >= 12 {
		t.Fatalf("stopped run: %+v, %v", sum, err)
	}
	first := sum.Finished
	spec, err := fleet.OpenSpec(f.stateDir, sum.Run)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Spec, cfg.Resume, cfg.Progress = spec, true, nil
	live := fleet.NewLive()
	cfg.Live = live
	if sum, err = fleet.Run(t.Context(), cfg); err != nil || sum.ThisRun != 12-first {
		t.Fatalf("resumed run: %+v, %v", sum, err)
	}
	b := live.Board()
	ids := map[string]bool{}
	for _, tr := range append(b.Slowest, b.NotAssigned...) {
		ids[tr.ID] = true
		if len(tr.Events) == 0 {
			t.Errorf("%s has no timeline", tr.ID)
		}
	}
	for i := range 12 {
		if id := spec.RegistrationID(i); !ids[id] {
			t.Errorf("the board lacks %s (the stopped part finished %d)", id, first)
		}
	}
	perSecond := 0
	for _, n := range b.PerSecond {
		perSecond += n
	}
	if perSecond != 12-first || b.Done != 12 {
		t.Errorf("per second %v (sum %d), done %d: want %d finished now of 12", b.PerSecond, perSecond, b.Done, 12-first)
	}
}
