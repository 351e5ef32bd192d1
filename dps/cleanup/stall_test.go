package cleanup

import (
	"context"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// stalledDPS is a DPS client for a listener that accepts connections and
// never answers: a DPS that has hung.
func stalledDPS(t *testing.T) *dps.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // kept open, never read or written
		}
	}()
	t.Cleanup(func() { ln.Close() })
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	client, err := dps.NewClientFromConnectionString("HostName="+ln.Addr().String()+";SharedAccessKeyName=provisioningserviceowner;SharedAccessKey="+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// A run against a DPS that stopped answering does not hang on its first
// requests: each attempt times out and is retried as a fault, and Progress
// says for how long DPS has been silent.
func TestRunReportsAStalledDPS(t *testing.T) {
	e := &Engine{DPS: stalledDPS(t), StateDir: t.TempDir()}
	job, err := e.newJob([]Action{{Kind: DeleteRecord, ID: "a"}, {Kind: DeleteRecord, ID: "b"}}, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	events := make(chan Event, 64)
	wait := collect(events)
	_, err = e.Run(ctx, job, RunOptions{RequestTimeout: 200 * time.Millisecond}, events)
	got := wait()
	if err == nil {
		t.Fatal("the run should end with its context, not succeed")
	}
	var last Progress
	for _, ev := range got {
		if p, ok := ev.(Progress); ok && !p.Final {
			last = p
		}
	}
	if last.Silent < 2*time.Second || last.Faults < 2 || last.Done != 0 {
		t.Fatalf("last progress %+v: want DPS silent for 2 s and the timed-out attempts counted as faults", last)
	}
	if j, err := e.OpenJob(job.ID); err != nil || j.Pending() != 2 {
		t.Fatalf("the job should keep both actions for a resume: %v", err)
	}
}

// A throttling pause is not silence: DPS answered, and asked to wait.
func TestProgressSilenceExcludesRetryAfterPause(t *testing.T) {
	f := startFixture(t, emulator.Options{})
	r := &runner{e: f.engine, job: &Job{}, start: time.Now().Add(-time.Minute), pacers: map[string]*pacer{}, tally: map[Outcome]int{}, meter: NewMeter(time.Now())}
	p := newPacer(4, time.Now)
	r.pacers[strings.ToLower(f.dps.Host())] = p
	r.answered.Store(time.Now().Add(-30 * time.Second).UnixNano())
	if s := r.progress(false).Silent; s < 29*time.Second {
		t.Fatalf("silent %s, want 30 s", s)
	}
	at, _ := p.acquire(context.Background())
	p.release(at, resultThrottled, 20*time.Second)
	if s := r.progress(false).Silent; s != 0 {
		t.Fatalf("silent %s during a Retry-After pause, want 0", s)
	}
}

// An unreachable DPS fails the scan within seconds, naming what failed and
// what to check: a stopped emulator at once, a stalled one at reachTimeout.
func TestScanReportsAnUnreachableDPSQuickly(t *testing.T) {
	f := startFixture(t, emulator.Options{})
	f.emu.Close()
	start := time.Now()
	_, err := f.engine.Scan(context.Background(), ScanOptions{}, nil)
	if err == nil || !strings.Contains(err.Error(), "DPS "+f.dps.Host()+" is not reachable") || !strings.Contains(err.Error(), "Check that it is running") {
		t.Fatalf("scan of a stopped emulator: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a refused connection took %s to report", d)
	}

	e := &Engine{DPS: stalledDPS(t), StateDir: t.TempDir()}
	start = time.Now()
	_, err = e.Scan(context.Background(), ScanOptions{}, nil)
	if err == nil || !strings.Contains(err.Error(), "no answer within 5s") {
		t.Fatalf("scan of a stalled DPS: %v", err)
	}
	if d := time.Since(start); d > reachTimeout+time.Second {
		t.Fatalf("a stalled DPS took %s to report", d)
	}
}

// Without hub connection strings the plan says what was skipped and how to
// turn it on.
func TestScanNotesSkippedHubDetection(t *testing.T) {
	f := startFixture(t, emulator.Options{})
	e := &Engine{DPS: f.dps, StateDir: t.TempDir()}
	plan, err := e.Scan(context.Background(), ScanOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Notes) != 1 || plan.Notes[0] != NoHubsNote || !strings.Contains(NoHubsNote, "set IOTHUB_CONNECTION_STRING") {
		t.Fatalf("notes %q", plan.Notes)
	}
	if plan, err = f.engine.Scan(context.Background(), ScanOptions{}, nil); err != nil || len(plan.Notes) != 0 {
		t.Fatalf("with hubs, no note: %q %v", plan.Notes, err)
	}
}

// UnfinishedJobs lists the jobs of this DPS with work left, newest first.
func TestUnfinishedJobs(t *testing.T) {
	f := startFixture(t, emulator.Options{})
	f.seed(t, "gone", 3)
	e := f.engine
	finished, err := e.newJob([]Action{{Kind: DeleteRecord, ID: "nothing-1"}}, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), finished, RunOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	older, err := e.newJob([]Action{{Kind: DeleteRecord, ID: "x"}, {Kind: DeleteRecord, ID: "x2"}}, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	half, err := e.OpenJob(older.ID) // one of its two done
	if err != nil {
		t.Fatal(err)
	}
	log, err := half.openLog()
	if err != nil {
		t.Fatal(err)
	}
	log.Append(logLine{N: 0, Outcome: OutcomeDeleted})
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // job ids are to the second
	newer, err := e.newJob([]Action{{Kind: DeleteRecord, ID: "y"}, {Kind: DeleteRecord, ID: "z"}}, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	other := &Engine{DPS: stalledDPS(t), StateDir: e.StateDir}
	if _, err := other.newJob([]Action{{Kind: DeleteRecord, ID: "w"}}, Selection{}); err != nil {
		t.Fatal(err)
	}
	jobs, err := e.UnfinishedJobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0] != (JobStatus{ID: newer.ID, Created: newer.Created, Actions: 2, Pending: 2}) ||
		jobs[1] != (JobStatus{ID: older.ID, Created: older.Created, Actions: 2, Pending: 1}) {
		t.Fatalf("unfinished jobs %v, want %s then %s", jobs, newer.ID, older.ID)
	}
}

// A dropped first request is a fault, not an unreachable DPS: the probe
// tries again. Every request faulted (half answered 500, half dropped):
// each probe must end at an answer, never at "not reachable".
func TestScanProbeRetriesADroppedRequest(t *testing.T) {
	f := startFixture(t, emulator.Options{FaultRate: 1})
	for range 20 {
		if err := f.engine.reach(context.Background()); err != nil {
			t.Fatalf("probe of a DPS that faults every request: %v; want the 500 taken as an answer", err)
		}
	}
}
