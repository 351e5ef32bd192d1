package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps/cleanup"
)

// A running clean-up job stops on ctrl+x and stays resumable: while it runs
// the console can name it (for the line printed after quitting), after the
// stop `:cleanup` lists it as unfinished, and a digit resumes it to the end.
func TestCleanupViewStopsListsAndResumesAJob(t *testing.T) {
	target, emu := startEmulator(t, 0)
	ctx := context.Background()
	const orphans = 10000
	if err := emu.SeedRegistrations(ctx, "gone", orphans); err != nil {
		t.Fatal(err)
	}
	j, err := cleanup.OpenJournal(target.StateDir, target.Service.Host())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Seen("gone"); err != nil {
		t.Fatal(err)
	}
	m := New(ctx, Options{Target: target, Start: "cleanup"})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	v := m.top().(*cleanupView)
	h := &viewHarness{t: t, v: v}
	h.run(v.Init())
	if v.plan == nil || len(v.plan.Findings) != orphans+12 {
		t.Fatalf("scan: %v, err %q", v.plan != nil, v.err)
	}
	h.press("p", "d")
	var running string
	pump(t, v, v.Update(press("y")), 30*time.Second, func(msg tea.Msg) bool {
		if ev, ok := msg.(cleanupEvent); ok && !ev.end && running == "" {
			if p, ok := ev.ev.(cleanup.Progress); ok && p.JobID != "" {
				v.Update(msg)
				running = v.ResumableJob()
				if got := m.InterruptedJobs(); len(got) != 1 || got[0] != p.JobID || running != p.JobID {
					t.Fatalf("a running job %s should be named for the resume hint: %q %q", p.JobID, got, running)
				}
				if !strings.Contains(plain(v.View()), "ctrl+x stops; the job resumes later") {
					t.Fatalf("the progress should offer the stop:\n%s", plain(v.View()))
				}
				v.Update(press("ctrl+x"))
			}
		}
		return false
	})
	out := plain(v.View())
	if v.running || !v.stopped || v.summary == nil || v.err != "" || len(m.InterruptedJobs()) != 0 ||
		!strings.Contains(out, "Stopped after") || !strings.Contains(out, "dpsconsole cleanup --resume "+running) {
		t.Fatalf("after ctrl+x the job should be stopped (err %q):\n%s", v.err, out)
	}

	h.press("r") // a new scan lists the unfinished job
	if len(v.unfinished) != 1 || v.unfinished[0].id != running || v.unfinished[0].pending == 0 {
		t.Fatalf("unfinished jobs %+v, want %s", v.unfinished, running)
	}
	out = plain(v.View())
	if !strings.Contains(out, "Unfinished clean-up jobs  (a digit resumes one)") || !strings.Contains(out, "1 "+running+"  started ") {
		t.Fatalf("the view should offer the unfinished job:\n%s", out)
	}
	h.press("1")
	if out := plain(v.View()); !strings.Contains(out, "Resume clean-up job "+running+"?") {
		t.Fatalf("a digit asks first:\n%s", out)
	}
	h.press("y")
	if v.running || v.stopped || v.summary == nil || v.summary.JobID != running || v.err != "" || len(v.unfinished) != 0 {
		t.Fatalf("the resumed job should finish: err %q summary %+v", v.err, v.summary)
	}
	if n, _, err := countRecords(ctx, target.Service, "gone", 0); err != nil || n != 0 {
		t.Fatalf("%d orphans left after the resume (%v)", n, err)
	}
	eng, _ := v.engine()
	if left, err := eng.UnfinishedJobs(); err != nil || len(left) != 0 {
		t.Fatalf("unfinished after the resume: %v %v", left, err)
	}
}

// A job whose DPS stopped answering says so, live, with the failure counts.
func TestCleanupViewSaysWhenDPSStopsAnswering(t *testing.T) {
	c := testCommon(t, 140, 30)
	v := newCleanupView(c)
	v.running = true
	v.Update(cleanupEvent{gen: v.gen, ev: cleanup.Progress{JobID: "j1", Total: 100, Done: 40, Faults: 9, Failed: 1, Rate: 0, Elapsed: 20 * time.Second, Silent: 12 * time.Second}})
	out := plain(v.View())
	if !strings.Contains(out, "DPS not answering for 12 s, retrying (9 attempts retried, 1 failed); ctrl+x stops") {
		t.Fatalf("progress:\n%s", out)
	}
	v.Update(cleanupEvent{gen: v.gen, ev: cleanup.Progress{JobID: "j1", Total: 100, Done: 41, Silent: 300 * time.Millisecond}})
	if strings.Contains(plain(v.View()), "not answering") {
		t.Fatal("an answering DPS is not reported silent")
	}
}

// The end of a job with failures opens a report with every one of them.
func TestCleanupViewReportsEveryFailure(t *testing.T) {
	c := testCommon(t, 100, 24)
	v := newCleanupView(c)
	v.running = true
	sum := &cleanup.Summary{JobID: "j1", Outcomes: map[cleanup.ActionKind]map[cleanup.Outcome]int{}}
	for i := range 30 {
		sum.Failures = append(sum.Failures, cleanup.Failure{Error: "delete registration record \"r" + itoa(i) + "\": DPS answered 400 Bad Request: " + strings.Repeat("why ", 40)})
	}
	report, ok := openedBy(v.Update(cleanupEvent{gen: v.gen, end: true, summary: sum})).(*reportView)
	if !ok {
		t.Fatal("no report opened")
	}
	report.SetSize(c.Width, c.Height)
	var all strings.Builder
	for range 20 {
		page := strings.Split(plain(report.View()), "\n")
		all.WriteString(strings.Join(page[:len(page)-1], "\n") + "\n")
		report.Update(press("pgdown"))
	}
	text := strings.Join(strings.Fields(all.String()), " ")
	for i := range 30 {
		if !strings.Contains(text, "\"r"+itoa(i)+"\": DPS answered 400 Bad Request: "+strings.TrimSpace(strings.Repeat("why ", 40))) {
			t.Fatalf("failure %d is not in the report in full:\n%s", i, all.String())
		}
	}
}

// A scan of an unreachable target says so within seconds, naming what
// failed and what to check; r scans again once the target is back. Without
// hub connection strings the plan says hub-based detection was skipped and
// how to turn it on.
func TestCleanupViewUnreachableTargetAndRecovery(t *testing.T) {
	dir := t.TempDir()
	target, emu := startEmulatorAt(t, dir, 0)
	target.HubConnectionStrings = nil
	emu.Close()
	c := testCommon(t, 120, 30)
	c.Target = target
	start := time.Now()
	h := harness(t, c, newCleanupView(c))
	v := h.v.(*cleanupView)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the scan took %s to fail", d)
	}
	out := plain(v.View())
	if !strings.Contains(out, "DPS "+target.Service.Host()+" is not reachable") || !strings.Contains(out, "Check that it is running") ||
		!strings.Contains(out, "(r scans again)") || v.plan != nil {
		t.Fatalf("an unreachable target should say so:\n%s", out)
	}

	startEmulatorAt(t, dir, 0) // back, on the same port
	h.press("r")
	out = plain(v.View())
	if v.plan == nil || v.err != "" || !strings.Contains(out, "Orphaned registration records") {
		t.Fatalf("r should scan again once the target is back (err %q):\n%s", v.err, out)
	}
	text := strings.Join(strings.Fields(out), " ")
	if !strings.Contains(text, "note: "+cleanup.NoHubsNote) {
		t.Fatalf("the note on skipped hub detection should be there in full:\n%s", out)
	}
}

// A job whose DPS hangs mid-run: the view says so within seconds, and
// ctrl+x stops the job, which stays resumable.
func TestCleanupViewRunAgainstAStalledDPS(t *testing.T) {
	c := testCommon(t, 160, 30)
	c.Target = &Target{Name: "stalled", Service: stalledService(t), StateDir: t.TempDir()}
	v := newCleanupView(c)
	v.Update(cleanupEvent{gen: v.gen, end: true, plan: &cleanup.Plan{Findings: []cleanup.Finding{
		{RegistrationID: "a", Reason: cleanup.ReasonGroupDeleted, GroupID: "g"},
		{RegistrationID: "b", Reason: cleanup.ReasonGroupDeleted, GroupID: "g"}}}})
	v.Update(press("p"))
	v.Update(press("d"))
	var shown string
	pump(t, v, v.Update(press("y")), 20*time.Second, func(msg tea.Msg) bool {
		if ev, ok := msg.(cleanupEvent); ok && !ev.end && shown == "" {
			if p, ok := ev.ev.(cleanup.Progress); ok && p.Silent >= 2500*time.Millisecond {
				v.Update(msg)
				shown = plain(v.View())
				v.Update(press("ctrl+x"))
			}
		}
		return false
	})
	if !strings.Contains(shown, "DPS not answering for 2 s, retrying (0 attempts retried, 0 failed); ctrl+x stops") {
		t.Fatalf("the view should say DPS is not answering:\n%s", shown)
	}
	if v.running || !v.stopped || v.summary == nil || v.err != "" {
		t.Fatalf("ctrl+x should stop the job: err %q", v.err)
	}
	eng, _ := v.engine()
	if jobs, err := eng.UnfinishedJobs(); err != nil || len(jobs) != 1 || jobs[0].Pending != 2 {
		t.Fatalf("the stopped job should be unfinished with both deletes left: %+v %v", jobs, err)
	}
}

// A listing of unfinished jobs older than a resume is dropped: it would
// offer the job being resumed.
func TestCleanupViewDropsAStaleJobListing(t *testing.T) {
	v := newCleanupView(testCommon(t, 100, 24))
	v.unfinished = []unfinishedJob{{id: "j1", pending: 3, size: 3}}
	old := v.jobsGen
	v.resume(v.unfinished[0]) // no target: it only records the error
	v.Update(jobsListed{gen: old, jobs: []unfinishedJob{{id: "j1", pending: 3, size: 3}}})
	if len(v.unfinished) != 0 {
		t.Fatalf("a stale listing was applied: %+v", v.unfinished)
	}
}
