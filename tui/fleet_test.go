package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/dpsconsole/dpsconsole/dps"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/fleet"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// waitForRe waits until the screen matches re.
func (f *flow) waitForRe(step, re string) {
	f.t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(20 * time.Second)
	for !r.MatchString(f.screen()) {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: screen never matched %s:\n%s", step, re, f.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFlowFleetRunStopResume drives :fleet in a real Program against the
// emulator: the form (prefilled from the selected group) refuses a bad
// count with the CLI's text, the run starts and its frames show progress,
// s stops it saying how many finished, r resumes it to the summary, no
// device is registered twice, a device's timeline opens, and a second run
// over the same IDs asks before registering them again.
func TestFlowFleetRunStopResume(t *testing.T) {
	target, _ := startEmulator(t, time.Second)
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet", emulator.TutorialGroupID)
	f.keys("/")
	f.typeText("legacy")
	f.waitFor("filter", "1/2")
	f.keys("enter", "f")
	f.waitFor("form", "Group        mylegacydevices", "Concurrency  100")

	f.keys("tab")
	f.typeText("x")
	f.keys("enter")
	f.waitFor("validation", `invalid argument "x" for "--devices" flag`)
	f.keys("backspace")
	f.typeText("20")
	for range 6 { // to Concurrency
		f.keys("tab")
	}
	f.keys("backspace", "backspace", "backspace")
	f.typeText("5")
	f.keys("enter")
	f.waitFor("running", "rate/s", "  flight ", "/20 (")
	f.keys("esc")
	f.waitFor("esc keeps the run", "the run is still going: ctrl+x or s stops it", "Fleet")
	f.waitForRe("progress", `assigned [1-9]`)
	f.keys("s")
	f.waitFor("stopped", "stopped", "pending", "r resumes the run")
	if strings.Contains(f.screen(), "20 of 20 finished") {
		t.Fatalf("the stop came too late to test a resume:\n%s", f.screen())
	}
	f.keys("r")
	f.waitFor("resumed to the end", "complete", "20 of 20 finished", "0 pending", "assigned 20")

	recs := map[string]dps.DeviceRegistrationState{}
	pager := target.Service.NewRegistrationStatePager(emulator.TutorialGroupID, nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Items {
			recs[r.RegistrationID] = r
		}
	}
	if len(recs) != 20 {
		t.Fatalf("%d records, want 20", len(recs))
	}
	for id, r := range recs {
		if r.Status != dps.StatusAssigned || r.Substatus != dps.SubstatusInitialAssignment {
			t.Errorf("%s: %s/%s: registered twice?", id, r.Status, r.Substatus)
		}
	}

	// The table holds the whole run: its first row may have finished before
	// the stop (its log kept the outcome, not the steps) or after the resume.
	f.keys("enter")
	f.waitForRe("timeline", `(request sent|finished before the run was resumed)(.|\n)*assigned to `)
	f.keys("esc")
	f.waitFor("back on the dashboard", "20 of 20 finished")

	f.keys("tab", "enter")
	f.waitFor("re-register question", "20 of the run's 20 device IDs already have registration records", "register all 20 again")
	f.keys("n")
	f.waitFor("cancelled", "Group        mylegacydevices")
	if len(recs) != 20 {
		t.Fatal("unreachable")
	}
}

// testBoard is a run in the middle: fixed numbers for goldens.
func testBoard() fleet.Board {
	b := fleet.Board{Snapshot: fleet.Snapshot{Total: 1000, Done: 420, InFlight: 100, Assigned: 417, Failed: 3, Throttled: 12,
		Rate: 84.5, ETA: 7 * time.Second, Elapsed: 5 * time.Second,
		Latency: fleet.Latency{P50: 1010 * time.Millisecond, P95: 1300 * time.Millisecond, P99: 2100 * time.Millisecond, Max: 2400 * time.Millisecond}},
		PerSecond: []int{0, 40, 85, 90, 120, 85}, Throttles: []int{0, 0, 0, 7, 5, 0},
		ThrottleWait: 12 * time.Second, MaxRetryAfter: time.Second,
		ByStatus: []fleet.StatusCount{{Status: "assigned", Substatus: "initialAssignment", Count: 417}, {Status: "error", Count: 3}},
		ByHub:    []fleet.HubCount{{Hub: "hub-1.azure-devices.net", Count: 210}, {Hub: "hub-2.azure-devices.net", Count: 207}}}
	for i := range fleet.HistogramBars {
		lo := time.Second + time.Duration(i)*60*time.Millisecond
		b.Histogram = append(b.Histogram, fleet.Bucket{Lower: lo, Upper: lo + 60*time.Millisecond, Count: max(200-i*i, 1)})
	}
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		b.NotAssigned = append(b.NotAssigned, fleet.DeviceTrace{ID: fmt.Sprintf("sim-%d", 7+i), Outcome: fleet.OutcomeError, Error: "HTTP 401 401002: the device key does not match",
			Events: []fleet.TraceEvent{{At: at, What: "request sent"}, {At: at.Add(20 * time.Millisecond), What: "error (401)", Err: true}}})
	}
	for i := range 20 {
		b.Slowest = append(b.Slowest, fleet.DeviceTrace{ID: fmt.Sprintf("sim-%d", 100+i), Outcome: fleet.OutcomeAssigned, Hub: "hub-1.azure-devices.net",
			Latency: 2400*time.Millisecond - time.Duration(i)*50*time.Millisecond, Throttled: i % 2})
	}
	return b
}

func TestFleetDashboardGolden(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 35}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			m := newTestApp(t, size[0], size[1], false)
			m.c.Styles = theme.NewStyles(true, true)
			m.Update(press("esc"))
			v := newFleetView(m.c, "plant-a")
			m.pushForTest(v)
			v.running, v.board = true, testBoard()
			v.start = fleetStart{spec: fleet.Spec{Prefix: "sim", Start: 1, Count: 1000, Transport: "https"}, schedule: fleet.Schedule{}}
			golden.RequireEqual(t, plain(screen(m)))
		})
	}
}

// TestFleetFormChecksWithTheFlagsTexts: the form refuses what the flags
// refuse, with their text, and puts the cursor on the field.
func TestFleetFormChecksWithTheFlagsTexts(t *testing.T) {
	c := testCommon(t, 100, 30)
	v := newFleetView(c, "")
	v.Init()
	if v.f.Value(2) != "sim" || v.f.Value(3) != "1" || v.f.Value(7) != "100" || v.f.Value(4) != "https" {
		t.Fatalf("the defaults are the flags': %q %q %q %q", v.f.Value(2), v.f.Value(3), v.f.Value(7), v.f.Value(4))
	}
	v.Update(press("enter"))
	if !strings.Contains(v.err, "--group is required") || v.f.Focus() != 0 {
		t.Fatalf("err %q, focus %d", v.err, v.f.Focus())
	}
	typeText(v.Update, "g")
	v.Update(press("tab"))
	typeText(v.Update, "5")
	for range 4 {
		v.Update(press("tab"))
	}
	typeText(v.Update, "fast") // rate
	v.Update(press("enter"))
	if !strings.Contains(v.err, "--rate: give devices a second or a minute above 0") || v.f.Focus() != 5 {
		t.Fatalf("err %q, focus %d", v.err, v.f.Focus())
	}
	if !strings.Contains(plain(v.View()), "--rate: give devices") {
		t.Fatalf("the error shows under its field:\n%s", plain(v.View()))
	}
}

// TestFleetReadOnly: under --readonly :fleet is hidden and refused, f does
// nothing, and a form reached anyway registers nothing.
func TestFleetReadOnly(t *testing.T) {
	m := newTestApp(t, 100, 30, true)
	if slices.Contains(commandsFor(true), "fleet") || !slices.Contains(commandsFor(false), "fleet") {
		t.Fatal(":fleet is hidden in read-only mode only")
	}
	m.Update(press("esc"))
	cmd := m.runCommand("fleet")
	if f, ok := cmd().(flashMsg); !ok || !strings.Contains(f.text, ":fleet is off in read-only mode: a fleet run registers devices") {
		t.Fatalf("got %#v", cmd())
	}
	if _, ok := m.top().(*fleetView); ok {
		t.Fatal("the fleet view opened")
	}
	if m.c.Keys.Fleet.Matches(press("f")) || m.c.Keys.FleetResume.Matches(press("r")) {
		t.Fatal("f and r are off in read-only mode")
	}
	v := newFleetView(m.c, "g")
	if cmd := v.submit(); cmd != nil || !strings.Contains(v.err, "off in read-only mode") {
		t.Fatalf("submit under --readonly: %q", v.err)
	}
}

// TestFleetFramesDoNotFollowTheDevices: however many devices finish, the
// view gets one message a frame, each with the whole board.
func TestFleetFramesDoNotFollowTheDevices(t *testing.T) {
	c := testCommon(t, 120, 35)
	v := newFleetView(c, "g")
	spec := fleet.Spec{Prefix: "sim", Start: 1, Count: 5000, Transport: "https"}
	live, feed := fleet.NewFeed(spec)
	v.running, v.live, v.start = true, live, fleetStart{spec: spec}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range spec.Count {
			feed.Assigned(i, "hub", time.Second)
			if i%1000 == 0 {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	start := time.Now()
	frames := 0
	cmd := v.frame()
	for v.board.Done < spec.Count {
		msg := cmd()
		frames++
		cmd = v.Update(msg.(routed).msg)
		if time.Since(start) > 5*time.Second {
			t.Fatalf("board stuck at %d", v.board.Done)
		}
	}
	<-done
	elapsed := time.Since(start)
	if most := int(elapsed/frameEvery) + 1; frames > most {
		t.Fatalf("%d messages in %s for %d devices: more than one a frame", frames, elapsed, spec.Count)
	}
	if out := plain(v.View()); !strings.Contains(out, "5000/5000") || len(strings.Split(out, "\n")) > 35 {
		t.Fatalf("the frame shows the board, in the body's lines:\n%s", out)
	}
}

// TestFleetFormKeyFields: the form has the CLI's --secondary and
// --group-key-file: the key file is read off the loop, a bad one gets the
// CLI's text under its field without its content, a good one is the run's
// key (the run remembers it came from a file), and --secondary reads the
// group's secondary key; the two do not go together.
func TestFleetFormKeyFields(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 35)
	c.Target = target
	secondary, keyFile := fieldOf(fleet.OptSecondary), fieldOf(fleet.OptGroupKeyFile)
	if secondary < 0 || keyFile < 0 || len(fleetLabels) != len(fleet.OptionNames) {
		t.Fatalf("no form fields for --secondary (%d) and --group-key-file (%d)", secondary, keyFile)
	}
	dir := t.TempDir()
	garbage, good := filepath.Join(dir, "garbage"), filepath.Join(dir, "good")
	os.WriteFile(garbage, []byte("not-a-key-at-all"), 0o600)
	os.WriteFile(good, []byte(emulator.TutorialGroupKey+"\n"), 0o600)
	// ready submits the form and runs its off-loop read.
	ready := func(fields map[int]string) (*fleetView, fleetReadyMsg) {
		v := newFleetView(c, emulator.TutorialGroupID)
		v.f.Set(1, "3")
		v.f.Set(2, "keyform")
		for i, s := range fields {
			v.f.Set(i, s)
		}
		cmd := v.submit()
		if !v.preparing { // refused in the form, nothing read
			return v, fleetReadyMsg{}
		}
		msg := cmd().(routed).msg.(fleetReadyMsg)
		v.Update(msg)
		return v, msg
	}
	v, _ := ready(map[int]string{secondary: "true", keyFile: good})
	if !strings.Contains(v.err, "--secondary reads the group's secondary key through the service API; it does not go with --group-key-file") || v.field != secondary {
		t.Errorf("both: %q, field %d", v.err, v.field)
	}
	missing := filepath.Join(dir, "missing")
	v, _ = ready(map[int]string{keyFile: missing})
	if v.err != "cannot read --group-key-file "+missing+": no such file or directory" || v.field != keyFile {
		t.Errorf("missing file: %q, field %d", v.err, v.field)
	}
	v, _ = ready(map[int]string{keyFile: garbage})
	if !strings.HasPrefix(v.err, "--group-key-file "+garbage+" does not hold a group key") || v.field != keyFile {
		t.Errorf("garbage: %q, field %d", v.err, v.field)
	}
	if out := plain(v.View()); strings.Contains(out, "not-a-key-at-all") || !strings.Contains(out, "does not hold a group key") {
		t.Errorf("the error shows, the file's content does not:\n%s", out)
	}
	_, msg := ready(map[int]string{keyFile: good})
	want, _ := keys.ParseKey(emulator.TutorialGroupKey)
	if msg.err != nil || msg.start.spec.KeySource != fleet.KeyFile || !msg.start.key.Equal(want) {
		t.Errorf("good file: %v, source %q", msg.err, msg.start.spec.KeySource)
	}
	att, err := target.Service.GetEnrollmentGroupAttestation(t.Context(), emulator.TutorialGroupID)
	if err != nil {
		t.Fatal(err)
	}
	want, _ = keys.ParseKey(att.SymmetricKey.SecondaryKey.Reveal())
	_, msg = ready(map[int]string{secondary: "true"})
	if msg.err != nil || msg.start.spec.KeySource != fleet.KeySecondary || !msg.start.key.Equal(want) {
		t.Errorf("secondary: %v, source %q", msg.err, msg.start.spec.KeySource)
	}
	if out := plain(newFleetView(c, "g").View()); strings.Contains(out, emulator.TutorialGroupKey) || !strings.Contains(out, "Key file") {
		t.Errorf("the form:\n%s", out)
	}
}

// TestFleetDeviceTimeline: enter on a device shows its steps with their
// offsets from the first, an error step marked, under a header with its
// outcome; a long trace scrolls and never draws past the screen.
func TestFleetDeviceTimeline(t *testing.T) {
	c := testCommon(t, 100, 20)
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tr := fleet.DeviceTrace{ID: "sim-7", Outcome: fleet.OutcomeError, Error: "HTTP 401 401002", Latency: 1500 * time.Millisecond, Throttled: 2}
	for i := range 40 {
		tr.Events = append(tr.Events, fleet.TraceEvent{At: at.Add(time.Duration(i) * 100 * time.Millisecond), What: fmt.Sprintf("step %02d", i)})
	}
	tr.Events[39].What, tr.Events[39].Err = "error: HTTP 401 401002", true
	v := newFleetDeviceView(c, tr)
	out := plain(v.View())
	if !strings.Contains(out, "sim-7: error in 1.5s, throttled 2×") || !strings.Contains(out, "step 00") || strings.Contains(out, "step 39") {
		t.Fatalf("the first page:\n%s", out)
	}
	if n := len(strings.Split(out, "\n")); n > c.Height {
		t.Fatalf("%d lines on a %d-line screen", n, c.Height)
	}
	v.Update(press("end"))
	out = plain(v.View())
	if !strings.Contains(out, "error: HTTP 401 401002") || !strings.Contains(out, "3.9") || strings.Contains(out, "step 00") || len(strings.Split(out, "\n")) > c.Height {
		t.Fatalf("the last page:\n%s", out)
	}
	if v.Status() != "error" || v.Title() != "sim-7" {
		t.Errorf("status %q, title %q", v.Status(), v.Title())
	}
}

// Transport and Secondary are choices: ←/→ change them, typed keys do not
// (typing made "fals xe", refused with a doubled flag-parse error).
func TestFleetChoiceFieldsIgnoreTyping(t *testing.T) {
	c := testCommon(t, 120, 35)
	v := newFleetView(c, emulator.TutorialGroupID)
	for _, field := range []int{4, fieldOf(fleet.OptSecondary)} {
		v.f.FocusOn(field)
		before := v.f.Value(field)
		for _, k := range []string{"x", "space", "backspace", "delete", "1"} {
			v.Update(press(k))
		}
		if got := v.f.Value(field); got != before {
			t.Errorf("field %s: typing changed %q to %q", fleetLabels[field], before, got)
		}
		v.Update(press("right"))
		if got := v.f.Value(field); got == before {
			t.Errorf("field %s: → did not change %q", fleetLabels[field], before)
		}
	}
}
