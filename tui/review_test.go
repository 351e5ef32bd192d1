package tui

import (
	"strings"
	"testing"
)

// TestGroupsViewOneDeletionAtATime: while a group's records are being
// deleted (before its group delete), keys cannot start a second deletion,
// which would have swapped the group deleted at the end.
func TestGroupsViewOneDeletionAtATime(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	h := harness(t, c, newGroupsView(c))
	v := h.v.(*groupsView)
	g, _ := v.table.Selected() // the demo's first group has records
	h.press("d")
	if v.confirm == nil || !strings.Contains(v.confirm.text, "It still has") {
		t.Fatalf("no records-first confirmation: %+v", v.confirm)
	}
	run := h.update(press("r")) // records first; not drained yet
	if v.deleting == nil || v.RunningJob() == "" {
		t.Fatal("the deletion is not marked running as soon as it is confirmed")
	}
	v.table.MoveBy(1)
	if cmd := h.update(press("d")); cmd != nil || v.working != "" {
		t.Fatal("d started another deletion while one runs")
	}
	h.run(run)
	if v.deleting != nil || !strings.Contains(strings.Join(h.flashes, "|"), "deleted enrollment group "+g.EnrollmentGroupID) {
		t.Fatalf("the deletion did not finish with its own group: %q", h.flashes)
	}
}
