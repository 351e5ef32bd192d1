package timeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

func testModel() *Model {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	return New(Env{Ctx: context.Background(), Now: func() time.Time { return now }})
}

// The result line names the device only when its ID is not the
// registration ID shown above it, so the usual line fits a tutorial's
// indented 120 columns without being cut.
func TestResultNamesTheDeviceOnlyWhenItDiffers(t *testing.T) {
	st := theme.NewStyles(true, true)
	tl := testModel()
	regID := "sn-007-888-abc-mac-09-42-52-d8-a0-a0"
	r := &dps.DeviceRegistrationState{Status: dps.StatusAssigned, AssignedHub: "127.0.0.1:33125", DeviceID: regID, Substatus: "initialAssignment"}
	tl.Show(Run{RegID: regID, Started: tl.env.Now(), Elapsed: 1010 * time.Millisecond, Result: r})
	out := ansi.Strip(tl.View(st, 112))
	if !strings.Contains(out, "✓ assigned → hub 127.0.0.1:33125, substatus initialAssignment, in 1.01s") || strings.Contains(out, ", device ") {
		t.Fatalf("result line:\n%s", out)
	}
	r.DeviceID = "other-device"
	if out := ansi.Strip(tl.View(st, 112)); !strings.Contains(out, "→ hub 127.0.0.1:33125, device other-device, substatus") {
		t.Fatalf("a device ID that differs must show:\n%s", out)
	}
}

// Without a target Start refuses at once and says why; no Cmd runs.
func TestStartWithoutTarget(t *testing.T) {
	tl := testModel()
	if cmd := tl.Start("dev", keys.Key{}, nil); cmd != nil || tl.Running() || tl.Err() == nil || tl.Err().Error() != "no target" {
		t.Fatalf("cmd %v, running %v, err %v", cmd != nil, tl.Running(), tl.Err())
	}
}

// Messages of an older run are handled (not passed on) but change nothing.
func TestStaleMessagesAreDropped(t *testing.T) {
	tl := testModel()
	tl.Show(Run{RegID: "dev", Started: tl.env.Now()})
	before := tl.View(theme.NewStyles(true, true), 80)
	for _, msg := range []any{RegisterMsg{run: tl.run - 1, done: true, state: dps.DeviceRegistrationState{Status: dps.StatusAssigned, AssignedHub: "h"}}, TelemetryMsg{run: tl.run - 1}, LiveMsg{run: tl.run - 1, up: true}, TickMsg{run: tl.run - 1}} {
		if cmd, handled := tl.Update(msg); cmd != nil || !handled {
			t.Fatalf("%T: cmd %v, handled %v", msg, cmd != nil, handled)
		}
	}
	if after := tl.View(theme.NewStyles(true, true), 80); after != before || tl.Result() != nil || tl.Sent() != 0 {
		t.Fatalf("a stale message changed the timeline:\n%s", after)
	}
	if _, handled := tl.Update("other"); handled {
		t.Fatal("a message of another kind was taken")
	}
}

// The message that ends the current run is Finished and puts its result on
// screen; the same message of an older run is neither.
func TestFinishedEndsOnlyTheCurrentRun(t *testing.T) {
	tl := testModel()
	tl.Show(Run{RegID: "dev", Started: tl.env.Now()})
	tl.running, tl.stopRun = true, func() {}
	done := RegisterMsg{run: tl.run, done: true, state: dps.DeviceRegistrationState{Status: dps.StatusAssigned, AssignedHub: "hub-1", DeviceID: "dev"}}
	if old := (RegisterMsg{run: tl.run - 1, done: true}); tl.Finished(old) {
		t.Fatal("an older run's last message counts as finished")
	}
	if !tl.Finished(done) {
		t.Fatal("the current run's last message is not finished")
	}
	tl.Update(done)
	if tl.Running() || !tl.Assigned() || !strings.Contains(ansi.Strip(tl.View(theme.NewStyles(true, true), 80)), "✓ assigned → hub hub-1, in 0.00s") {
		t.Fatalf("running %v, result %+v:\n%s", tl.Running(), tl.Result(), ansi.Strip(tl.View(theme.NewStyles(true, true), 80)))
	}
}

// A run recorded elsewhere as steps (a fleet device's) shows each step at
// its offset from Started, an error step in the error style, and no
// connecting line or result line of its own: the steps say it.
func TestShowRecordedSteps(t *testing.T) {
	st := theme.NewStyles(true, true)
	tl := testModel()
	t0 := tl.env.Now()
	tl.Show(Run{RegID: "sim-3", Started: t0, Elapsed: 1200 * time.Millisecond, Steps: []Step{
		{At: t0, Text: "request sent"},
		{At: t0.Add(250 * time.Millisecond), Text: "polled: assigning #1"},
		{At: t0.Add(1200 * time.Millisecond), Text: "failed: HTTP 401", Err: true},
	}})
	out := ansi.Strip(tl.View(st, 80))
	want := "  +0.00s request sent\n  +0.25s polled: assigning #1\n  +1.20s failed: HTTP 401"
	if out != want {
		t.Fatalf("got\n%q\nwant\n%q", out, want)
	}
	if colored := tl.View(theme.NewStyles(false, true), 80); !strings.Contains(colored, theme.NewStyles(false, true).Error.Render("failed: HTTP 401")) {
		t.Errorf("the error step is not in the error style: %q", colored)
	}
}
