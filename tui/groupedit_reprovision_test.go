package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// editGroup opens the edit form, lets change work the fields and saves.
func editGroup(t *testing.T, c *Common, id string, change func(v *groupEditView)) {
	t.Helper()
	v := openEdit(t, c, id)
	change(v)
	v.focusOn(geStatus)
	drain(t, v.Update, v.Update(press("enter")), 4)
	if v.err != "" || v.conflict != nil {
		t.Fatalf("saving %s: %s %v", id, v.err, v.conflict)
	}
}

// setTwin types an initial twin into the form's twin field.
func setTwin(v *groupEditView, twin string) {
	v.focusOn(geTwin)
	v.twin.Reset()
	typeText(v.Update, twin)
}

// tickOnly ticks exactly the hub at index i on the Hubs row.
func tickOnly(v *groupEditView, i int) {
	v.focusOn(geHubs)
	for j := range v.hubs {
		v.hubAt = j
		if v.picks[j] != (j == i) {
			v.Update(press("space"))
		}
	}
}

// The demo of reprovisioning, end to end on the real emulator: move the
// group to the other hub in the edit form, register the same device again
// from simulate, and the timeline shows deviceDataMigrated (twin kept) or,
// under reset, deviceDataReset (the new initial twin); a new device gets
// initialAssignment.
func TestSimulateShowsReprovisioningAfterAGroupEdit(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 140, 40)
	c.Target, c.Now = target, time.Now
	ctx := context.Background()
	group := emulator.TutorialGroupID
	editGroup(t, c, group, func(v *groupEditView) { setTwin(v, `{"tags":{"config":"v1"}}`) })

	sim := newSimulateView(c, group, "mover-1")
	h := harness(t, c, sim)
	h.press("enter")
	first := sim.tl.Result()
	if first == nil || first.Substatus != dps.SubstatusInitialAssignment {
		t.Fatalf("first registration: %+v %v", first, sim.tl.Err())
	}
	hubs := knownHubs(target, dps.EnrollmentGroup{})
	from := first.AssignedHub
	other := hubs[0]
	if strings.EqualFold(other, from) {
		other = hubs[1]
	}
	otherAt := 0
	if other != hubs[0] {
		otherAt = 1
	}
	twinTag := func(hubHost, id string) any {
		t.Helper()
		reg, err := target.Registry(hubHost)
		if err != nil {
			t.Fatal(err)
		}
		tw, err := reg.GetTwin(ctx, id)
		if err != nil {
			t.Fatalf("twin of %s on %s: %v", id, hubHost, err)
		}
		return tw.Tags["config"]
	}

	// migrate: the device moves, its twin with it.
	editGroup(t, c, group, func(v *groupEditView) {
		tickOnly(v, otherAt)
		setTwin(v, `{"tags":{"config":"v2"}}`)
	})
	h.press("enter")
	r := sim.tl.Result()
	if r == nil || r.Substatus != dps.SubstatusDeviceDataMigrated || !strings.EqualFold(r.AssignedHub, other) {
		t.Fatalf("after moving the group: %+v %v", r, sim.tl.Err())
	}
	out := plain(sim.View())
	for _, want := range []string{"substatus deviceDataMigrated", "moved from " + from + " to " + other + ", twin migrated"} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q:\n%s", want, out)
		}
	}
	if got := twinTag(other, "mover-1"); got != "v1" {
		t.Errorf("migrated twin tag config = %v, want v1 (the twin it had)", got)
	}

	// reset: moved back, starting from the group's initial twin.
	editGroup(t, c, group, func(v *groupEditView) {
		tickOnly(v, 1-otherAt)
		v.focusOn(geReprovision)
		v.Update(press("right")) // migrate → reset
	})
	h.press("enter")
	r = sim.tl.Result()
	if r == nil || r.Substatus != dps.SubstatusDeviceDataReset || !strings.EqualFold(r.AssignedHub, from) {
		t.Fatalf("after reset and moving back: %+v %v", r, sim.tl.Err())
	}
	if out := plain(sim.View()); !strings.Contains(out, "substatus deviceDataReset") || !strings.Contains(out, "twin reset to the initial twin") {
		t.Errorf("timeline after the reset:\n%s", out)
	}
	if got := twinTag(from, "mover-1"); got != "v2" {
		t.Errorf("reset twin tag config = %v, want v2 (the new initial twin)", got)
	}

	// A device never registered: initialAssignment.
	sim.f.Set(sfRegID, "mover-2")
	h.press("enter")
	if r := sim.tl.Result(); r == nil || r.Substatus != dps.SubstatusInitialAssignment {
		t.Fatalf("new device: %+v %v", r, sim.tl.Err())
	}
	if out := plain(sim.View()); !strings.Contains(out, "substatus initialAssignment") || strings.Contains(out, "moved from") || strings.Contains(out, "twin reset") {
		t.Errorf("timeline for a new device:\n%s", out)
	}
}
