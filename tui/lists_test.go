package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// filter types a filter into a view's table and applies it.
func (h *viewHarness) filter(q string) {
	h.press("/")
	for _, r := range q {
		h.press(string(r))
	}
	h.press("enter")
}

// TestCtrlAMarksOnlyTheShownRecords: with a filter showing 9 of 36 records,
// ctrl+a marks those 9 and the dialog deletes 9; A is the named action for
// every record of the group, and its dialog says what the filter leaves out.
func TestCtrlAMarksOnlyTheShownRecords(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	h := harness(t, c, newGroupView(c, emulator.DemoHashedGroup))
	h.filter("sensor-00") // not "00": a hub port may hold it
	if out := plain(h.v.View()); !strings.Contains(out, "9/36") {
		t.Fatalf("the filter /sensor-00 should show 9 of 36:\n%s", out)
	}
	h.press("ctrl+a")
	if !strings.Contains(h.lastFlash(), "marked the 9 records shown") {
		t.Fatalf("ctrl+a flash %q", h.lastFlash())
	}
	h.press("d")
	out := plain(h.v.View())
	if !strings.Contains(out, "Delete 9 marked registration records of hashed-fleet?") || strings.Contains(out, "36") {
		t.Fatalf("ctrl+a under a filter must mark the 9 shown, not all 36:\n%s", out)
	}
	h.press("n") // cancels
	h.press("ctrl+a")
	if v := h.v.(*groupView); v.table.MarkedCount() != 0 {
		t.Fatalf("a second ctrl+a unmarks the shown rows: %d marked", v.table.MarkedCount())
	}

	h.press("A")
	if want := "all 36 records of hashed-fleet marked, across every page"; h.lastFlash() != want {
		t.Fatalf("A flash %q, want %q", h.lastFlash(), want)
	}
	h.press("d")
	out = strings.Join(strings.Fields(plain(h.v.View())), " ")
	for _, want := range []string{"Delete ALL 36 registration records of hashed-fleet", "The filter /sensor-00 does not limit this: it shows 9 of the 36 loaded records."} {
		if !strings.Contains(out, want) {
			t.Fatalf("the every-record dialog lacks %q:\n%s", want, out)
		}
	}
	h.press("n")
	if n, _, err := countRecords(context.Background(), target.Service, emulator.DemoHashedGroup, 0); err != nil || n != 36 {
		t.Fatalf("cancelled dialogs deleted records: %d left (%v)", n, err)
	}
}

// TestToggleAsksAndKeepsTheCursorOnTheGroup: e asks first, and after the
// refresh the cursor is still on the same group — pages deep — so a second
// e acts on it again, not on row 1.
func TestToggleAsksAndKeepsTheCursorOnTheGroup(t *testing.T) {
	target, _ := startEmulator(t, 0)
	ctx := context.Background()
	for i := range 130 {
		g := dps.EnrollmentGroup{EnrollmentGroupID: fmt.Sprintf("zz-group-%03d", i), Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey,
			SymmetricKey: &dps.SymmetricKeyAttestation{PrimaryKey: dps.Secret(keys.GenerateKey().Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}}
		if _, err := target.Service.CreateOrUpdateEnrollmentGroup(ctx, g, nil); err != nil {
			t.Fatal(err)
		}
	}
	c := testCommon(t, 120, 30)
	c.Target = target
	h := harness(t, c, newGroupsView(c))
	v := h.v.(*groupsView)
	if got := v.Status(); got != "100+ groups" {
		t.Fatalf("header count of a partly loaded list = %q, want 100+ groups", got)
	}
	for i := 0; v.table.Loaded() < 132 || v.table.Cursor() < 120; i++ {
		if i == 20 {
			t.Fatalf("page-downs never reached row 120: %d loaded, cursor %d", v.table.Loaded(), v.table.Cursor())
		}
		h.press("pgdown")
	}
	g, _ := v.table.Selected()
	id := g.EnrollmentGroupID
	h.press("e")
	if out := plain(v.View()); !strings.Contains(out, "Disable enrollment group "+id+"?") {
		t.Fatalf("e should ask first:\n%s", out)
	}
	if cur, _ := target.Service.GetEnrollmentGroup(ctx, id); cur.ProvisioningStatus == dps.ProvisioningDisabled {
		t.Fatal("e disabled the group before the answer")
	}
	h.press("y")
	if sel, _ := v.table.Selected(); sel.EnrollmentGroupID != id || sel.ProvisioningStatus != dps.ProvisioningDisabled {
		t.Fatalf("after the refresh %s (%s) is selected, want %s disabled", sel.EnrollmentGroupID, sel.ProvisioningStatus, id)
	}
	h.press("e")
	if out := plain(v.View()); !strings.Contains(out, "Enable enrollment group "+id+"?") {
		t.Fatalf("the second e should offer to enable the same group:\n%s", out)
	}
	h.press("y")
	if cur, _ := target.Service.GetEnrollmentGroup(ctx, id); cur.ProvisioningStatus != dps.ProvisioningEnabled {
		t.Fatalf("group %s is %s, want enabled again", id, cur.ProvisioningStatus)
	}
	if first, _ := target.Service.GetEnrollmentGroup(ctx, emulator.DemoHashedGroup); first.ProvisioningStatus != dps.ProvisioningEnabled {
		t.Fatal("the first row's group was toggled")
	}
}

// seedBig seeds a group of n records and opens its view.
func seedBig(t *testing.T, n int) (*viewHarness, *groupView) {
	target, emu := startEmulator(t, 0)
	if err := emu.SeedRegistrations(context.Background(), "big", n); err != nil {
		t.Fatal(err)
	}
	c := testCommon(t, 120, 30)
	c.Target = target
	h := harness(t, c, newGroupView(c, "big"))
	return h, h.v.(*groupView)
}

// TestBottomReachesTheTrueEnd: G on a partly loaded list loads the rest and
// lands on the last record, not on the last loaded one.
func TestBottomReachesTheTrueEnd(t *testing.T) {
	h, v := seedBig(t, 2500)
	h.press("G")
	if r, _ := v.table.Selected(); r.id != "big-0002499" || v.table.More() {
		t.Fatalf("G selected %s with more=%v, want big-0002499, the last record", r.id, v.table.More())
	}
}

// TestFilterSaysItCoversLoadedPagesAndLoadsTheRest: a filter on a partly
// loaded list says so and G loads every page (with progress, esc stops it).
func TestFilterSaysItCoversLoadedPagesAndLoadsTheRest(t *testing.T) {
	h, v := seedBig(t, 5000)
	h.filter("999")
	out := plain(v.View())
	for _, want := range []string{"searched the 1,000 loaded rows only", "the filter covers the loaded pages only: G loads the rest", "1/1000+"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the filtered view lacks %q:\n%s", want, out)
		}
	}
	// G, one page lands, then esc: the page in flight lands and no more.
	page := v.Update(press("G"))
	next := v.Update(page().(routed).msg)
	if out := plain(v.View()); !strings.Contains(out, "loading every page: 2,000 loaded… (esc stops)") {
		t.Fatalf("no progress while loading every page:\n%s", out)
	}
	if !v.Escape() {
		t.Fatal("esc should stop the load")
	}
	h.run(next)
	if v.table.Loaded() != 3000 || !v.table.More() {
		t.Fatalf("after esc %d loaded (more=%v), want the page in flight only: 3000", v.table.Loaded(), v.table.More())
	}
	h.press("G")
	if r, _ := v.table.Selected(); r.id != "big-0004999" {
		t.Fatalf("G selected %s, want the last match big-0004999", r.id)
	}
	if v.table.Loaded() != 5000 || v.table.More() || v.table.Len() != 5 {
		t.Fatalf("G loaded %d (more=%v), %d match; want 5000, 5", v.table.Loaded(), v.table.More(), v.table.Len())
	}
	if out := plain(v.View()); strings.Contains(out, "loaded pages only") || !strings.Contains(out, "5/5000") {
		t.Fatalf("every page loaded, the filter covers them all:\n%s", out)
	}
}

// TestHomeCountFollowsRecordDeletes: deleting records in a group updates
// the home screen's count of that group.
func TestHomeCountFollowsRecordDeletes(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet", "36")
	f.keys("enter")
	f.waitFor("open", "Group hashed-fleet", "36/36")
	f.keys("space", "d")
	f.waitFor("confirm", "Delete 1 marked registration record of hashed-fleet?")
	f.keys("y")
	f.waitFor("deleted", "deleted 1 registration record", "35/35")
	f.keys("esc")
	f.waitFor("home", "Enrollment groups", "2/2")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(lineWith(f.screen(), "hashed-fleet"), " 35") {
		if time.Now().After(deadline) {
			t.Fatalf("the home count of hashed-fleet should be 35 after the delete:\n%s", f.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGroupRecordsFollowASimulatedRegistration: the record a simulated
// registration wrote is listed on return to the group, without r.
func TestGroupRecordsFollowASimulatedRegistration(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "mylegacydevices")
	f.keys("down", "enter")
	f.waitFor("open legacy", "Group mylegacydevices", "0/0")
	f.keys("s")
	f.waitFor("simulate", "Simulate device")
	f.typeText(flowRegID)
	f.keys("enter", "enter")
	f.waitFor("assigned", "✓ assigned → hub")
	f.keys("esc")
	f.waitFor("records refreshed", "Group mylegacydevices", flowRegID, "1/1")
}

// lineWith is the first line of s containing sub, trimmed.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// TestAChangeElsewhereKeepsTheMarks: records changed by another view reload
// the group at once, unless records are marked: then the marks stay and the
// header says r reloads.
func TestAChangeElsewhereKeepsTheMarks(t *testing.T) {
	h, v := seedBig(t, 10)
	h.run(v.Update(recordsChangedMsg{from: -1, group: "big"}))
	if v.gen != 2 {
		t.Fatalf("a change with nothing marked should reload (gen %d)", v.gen)
	}
	h.press("space")
	h.run(v.Update(recordsChangedMsg{from: -1, group: "big"}))
	if v.table.MarkedCount() != 1 || !strings.Contains(v.Status(), "r reloads") {
		t.Fatalf("the mark should survive and the header say so: %d marked, %q", v.table.MarkedCount(), v.Status())
	}
	h.run(v.Update(recordsChangedMsg{from: -1, group: "other"}))
	h.press("r")
	if strings.Contains(v.Status(), "r reloads") {
		t.Fatalf("r reloads: %q", v.Status())
	}
}
