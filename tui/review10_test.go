package tui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
	"github.com/dpsconsole/dpsconsole/tui/components/timeline"
)

// Review of issue #10: the groups the tutorial creates and removes show on
// home without r (views an action changed are refreshed).
func TestTutorialGroupsReachHomeWithoutRefresh(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet")
	f.keys(":")
	f.typeText("tutorial")
	f.keys("enter")
	f.waitFor("open", "[▸] 1.")
	group := f.p.stack[len(f.p.stack)-1].(*tutorialView).groupID
	f.keys("enter")
	f.waitFor("group", "created group "+group)
	f.keys("esc", "esc")
	f.waitFor("leave dialog", "keep them and leave")
	f.keys("k")
	f.waitFor("home lists the kept group", "3 groups", "  "+group)

	f.keys(":")
	f.typeText("tutorial")
	f.keys("enter")
	f.waitFor("leftovers", "remove them now")
	f.keys("y")
	f.waitFor("removed", "removed the earlier run's leftovers")
	f.keys("esc")
	f.waitFor("home", "2 groups")
	time.Sleep(300 * time.Millisecond)
	if s := f.screen(); strings.Contains(s, "  "+group) {
		t.Fatalf("home still lists the removed group %s:\n%s", group, s)
	}
}

// A :command refused under --readonly flashes as refused (!), not as done (✓).
func TestReadOnlyRefusalFlashesAsRefused(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}, ReadOnly: true, Start: "derive"})
	for _, name := range []string{"simulate", "tutorial"} {
		msg, ok := m.runCommand(":" + name)().(flashMsg)
		if !ok || msg.level != levelWarning || !strings.Contains(msg.text, "off in read-only mode") {
			t.Fatalf(":%s under --readonly flashed %#v, want a warning", name, msg)
		}
	}
}

// ctrl+a's flash counts in the singular for one record, and a filter that
// shows nothing has nothing to mark: a warning, not "✓ unmarked the 0".
func TestCtrlAFlashCountsRecords(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	h := harness(t, c, newGroupView(c, emulator.DemoHashedGroup))
	h.filter("fleet-sensor-007")
	h.press("ctrl+a")
	if f := h.lastFlash(); !strings.HasPrefix(f, "marked the 1 record shown") {
		t.Fatalf("ctrl+a on one shown record flashed %q", f)
	}
	h.press("ctrl+a") // unmark
	h.filter("no-such-record")
	msg, ok := h.v.Update(press("ctrl+a"))().(flashMsg)
	if !ok || msg.level != levelWarning || strings.Contains(msg.text, "0 records") {
		t.Fatalf("ctrl+a with nothing shown flashed %#v, want a warning", msg)
	}
}

// The delete dialog counts the marks a filter hides in the singular too.
func TestDeleteDialogCountsOneHiddenMark(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	h := harness(t, c, newGroupView(c, emulator.DemoHashedGroup))
	h.press("space", "space") // fleet-sensor-001 and -002
	h.filter("sensor-001")    // no hub port matches it
	h.press("d")
	if out := plain(h.v.View()); !strings.Contains(out, "1 of them is hidden by the filter.") {
		t.Fatalf("the dialog should say one mark is hidden:\n%s", out)
	}
}

// A revealed key is wider than an 80-column terminal: the detail wraps the
// long JSON lines to the width, so the root cuts nothing (it cut every line
// of the padded block with a stray …, and the key with it).
func TestEnrollmentDetailFitsTheWidthRevealed(t *testing.T) {
	target, _ := startEmulator(t, 0)
	if _, err := target.Service.CreateOrUpdateEnrollment(context.Background(), testEnrollment("shown"), nil); err != nil {
		t.Fatal(err)
	}
	c := testCommon(t, 80, 40)
	c.Target = target
	h := harness(t, c, newEnrollmentsView(c))
	h.press("enter", "v")
	out := plain(h.v.View())
	for _, l := range strings.Split(out, "\n") {
		if ansi.StringWidth(l) > 80 {
			t.Fatalf("a line wider than the terminal (%d):\n%s", ansi.StringWidth(l), out)
		}
	}
	if !strings.Contains(strings.Join(strings.Fields(out), ""), tutorialGroupKey) {
		t.Fatalf("the revealed key should be whole:\n%s", out)
	}
}

// At step 5 the tutorial says "ctrl+t sends a message" and help lists
// ctrl+t for the tutorial: it sends, as enter does.
func TestTutorialCtrlTSendsAtStepFive(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet")
	f.keys(":")
	f.typeText("tutorial")
	f.keys("enter")
	f.waitFor("open", "[▸] 1.")
	f.keys("enter")
	f.waitFor("group", "[▸] 2.")
	f.keys("enter")
	f.waitFor("id", "[▸] 3.")
	f.keys("enter", "enter")
	f.waitFor("provisioned", "[▸] 5.", "ctrl+t sends a message")
	f.keys("ctrl+t")
	f.waitFor("telemetry", "[✓] 5.", "1 message accepted")
	f.keys("esc")
	f.waitFor("leave", "remove them now")
	f.keys("y")
	f.waitFor("left", "tutorial left")
}

// The hint after an assignment says only what is true: run again on the
// one hub of a static group, the substatus stays initialAssignment, so no
// "reprovisioning substatus" is promised.
func TestSimulateAgainHintIsTrueOnTheSameHub(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target, c.Now = target, time.Now
	v := newSimulateView(c, "mylegacydevices", "rv-same-hub")
	h := harness(t, c, v)
	h.press("enter")
	h.press("enter")
	if !v.tl.Assigned() || v.tl.Result().Substatus != "initialAssignment" {
		t.Fatalf("the second run: %+v %v", v.tl.Result(), v.tl.Err())
	}
	out := plain(v.View())
	if strings.Contains(out, "shows its reprovisioning substatus") || !strings.Contains(out, "the substatus says if DPS moved or reset it") {
		t.Fatalf("the hint after an initialAssignment re-run:\n%s", out)
	}
}

// e confirmed on a group or enrollment someone else set meanwhile has
// nothing to do: the flash is a warning (!), not a success (✓).
func TestToggleAlreadyDoneFlashesAWarning(t *testing.T) {
	target, _ := startEmulator(t, 0)
	ctx := context.Background()
	c := testCommon(t, 120, 30)
	c.Target = target
	var levels []flashLevel
	record := func(h *viewHarness) func(tea.Msg) tea.Cmd {
		return func(msg tea.Msg) tea.Cmd {
			if f, ok := msg.(flashMsg); ok {
				levels = append(levels, f.level)
			}
			return h.update(msg)
		}
	}

	g := harness(t, c, newGroupsView(c))
	sel, _ := g.v.(*groupsView).table.Selected()
	full, _ := target.Service.GetEnrollmentGroup(ctx, sel.EnrollmentGroupID)
	full.Attestation, _ = target.Service.GetEnrollmentGroupAttestation(ctx, sel.EnrollmentGroupID)
	full.ProvisioningStatus = dps.ProvisioningDisabled
	if _, err := target.Service.CreateOrUpdateEnrollmentGroup(ctx, full, nil); err != nil {
		t.Fatal(err)
	}
	g.press("e")
	drain(t, record(g), g.v.Update(press("y")), 20)
	if len(levels) == 0 || levels[0] != levelWarning {
		t.Fatalf("group already disabled: flash levels %v (%q)", levels, g.flashes)
	}

	if _, err := target.Service.CreateOrUpdateEnrollment(ctx, testEnrollment("rv-toggle"), nil); err != nil {
		t.Fatal(err)
	}
	e := harness(t, c, newEnrollmentsView(c))
	en := testEnrollment("rv-toggle")
	en.ProvisioningStatus = dps.ProvisioningDisabled
	cur, _ := target.Service.GetEnrollment(ctx, "rv-toggle")
	en.ETag = cur.ETag
	if _, err := target.Service.CreateOrUpdateEnrollment(ctx, en, nil); err != nil {
		t.Fatal(err)
	}
	levels = nil
	e.press("e")
	drain(t, record(e), e.v.Update(press("y")), 20)
	if len(levels) == 0 || levels[0] != levelWarning {
		t.Fatalf("enrollment already disabled: flash levels %v (%q)", levels, e.flashes)
	}
}

// Under a dialog the footer lists no view keys (enter cancels a dialog, it
// does not run), as in the lists; the tutorial's ID field shows its esc.
func TestDialogFootersListNoViewKeys(t *testing.T) {
	c := testCommon(t, 120, 30)
	tv := newTutorialView(c)
	tv.confirm = &confirm.Dialog{Text: "leave?"}
	sv := newSimulateView(c, "g", "dev")
	sv.confirm = &confirm.Dialog{Text: "again?"}
	for name, v := range map[string]view{"tutorial": tv, "simulate": sv} {
		if h := v.Hints(); len(h) != 0 {
			t.Errorf("%s under a dialog hints %d keys", name, len(h))
		}
	}
	tv.confirm = nil
	tv.regID.Focus()
	var keys []string
	for _, b := range tv.Hints() {
		keys = append(keys, b.Help().Key)
	}
	if !slices.Contains(keys, "esc") {
		t.Errorf("the tutorial's ID field hints %q, without esc", keys)
	}
}

// Under --readonly an unknown command's hint lists only the commands offered.
func TestReadOnlyUnknownCommandHidesWriteCommands(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}, ReadOnly: true, Start: "derive"})
	msg, _ := m.runCommand(":zzz")().(flashMsg)
	if !strings.Contains(msg.text, ":derive") || strings.Contains(msg.text, ":simulate") || strings.Contains(msg.text, ":tutorial") {
		t.Fatalf("unknown command under --readonly: %q", msg.text)
	}
}

// The record the tutorial's step 4 makes counts on home at once.
func TestTutorialRecordCountsOnHome(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet")
	f.keys(":")
	f.typeText("tutorial")
	f.keys("enter")
	f.waitFor("open", "[▸] 1.")
	group := f.p.stack[len(f.p.stack)-1].(*tutorialView).groupID
	f.keys("enter")
	f.waitFor("group", "[▸] 2.")
	f.keys("enter")
	f.waitFor("id", "[▸] 3.")
	f.keys("enter", "enter")
	f.waitFor("provisioned", "[▸] 5.")
	f.keys("esc")
	f.waitFor("leave", "keep them and leave")
	f.keys("k")
	f.waitFor("home counts the record", "all linked hubs                      enabled  1")
	if !strings.Contains(f.screen(), group) {
		t.Fatalf("home lacks %s:\n%s", group, f.screen())
	}
}

// A failed registration in the tutorial wraps inside the tutorial's indent:
// the timeline's error is never cut at the right edge.
func TestTutorialTimelineErrorFitsTheWidth(t *testing.T) {
	c := testCommon(t, 80, 60)
	v := newTutorialView(c)
	v.current = stepProvision
	v.tl.Show(timeline.Run{RegID: "dev-1", Started: c.Now(), Err: errors.New("refused: " + strings.Repeat("0123456789", 12) + " and here is what to do at the end")})
	v.failed = "short"
	out := plain(v.View())
	for _, l := range strings.Split(out, "\n") {
		if ansi.StringWidth(l) > 80 {
			t.Fatalf("a line of %d columns at 80 (cut by the root):\n%s", ansi.StringWidth(l), out)
		}
	}
	v.tl.Show(timeline.Run{RegID: "dev-1", Started: c.Now(), Result: &dps.DeviceRegistrationState{Status: dps.StatusFailed, RegistrationID: "dev-1", AssignedHub: strings.Repeat("h", 60), DeviceID: strings.Repeat("d", 30)}})
	for _, l := range strings.Split(plain(v.View()), "\n") {
		if ansi.StringWidth(l) > 80 {
			t.Fatalf("a failed result of %d columns at 80:\n%s", ansi.StringWidth(l), plain(v.View()))
		}
	}
}
