package cleanup

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// Two-way reconciliation: a device made straight on a hub and one whose
// record was deleted have no registration record at all. They are their own
// finding (with their hub), the records' findings stay as they were, and a
// device DPS provisioned normally is never one of them.
func TestScanFindsHubDevicesWithoutRecords(t *testing.T) {
	f := startFixture(t, emulator.Options{Seed: "demo"})
	ctx := context.Background()
	hub1 := f.hubs[0].Host()
	if err := f.emu.AddHubDevice(ctx, hub1, "Made-On-The-Hub"); err != nil {
		t.Fatal(err)
	}
	fleet := slices.Sorted(func(yield func(string) bool) {
		for id := range f.records(t, emulator.DemoHashedGroup) {
			if !yield(id) {
				return
			}
		}
	})
	lost, err := f.dps.GetRegistrationState(ctx, fleet[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := f.dps.DeleteRegistrationState(ctx, lost.RegistrationID, nil); err != nil {
		t.Fatal(err)
	}

	plan, err := f.engine.Scan(ctx, ScanOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Findings) != 12 {
		t.Errorf("record findings = %d (%v), want the demo's 12 orphans only", len(plan.Findings), byReason(plan))
	}
	got := map[string]string{}
	for _, d := range plan.Unregistered {
		got[d.DeviceID] = d.Hub
		if d.ETag == "" {
			t.Errorf("unregistered device %s has no ETag to delete it by", d.DeviceID)
		}
	}
	want := map[string]string{"Made-On-The-Hub": hub1, lost.DeviceID: lost.AssignedHub}
	if len(got) != len(want) || got["Made-On-The-Hub"] != hub1 || got[lost.DeviceID] != lost.AssignedHub {
		t.Fatalf("unregistered devices = %v, want %v (no provisioned device among them)", got, want)
	}
	perHub := plan.UnregisteredCounts()
	total := 0
	for _, c := range perHub {
		total += c.Devices
	}
	if total != 2 {
		t.Errorf("per-hub counts %+v add up to %d, want 2", perHub, total)
	}

	// Never deleted unless asked for by their own switch.
	for _, sel := range []Selection{{}, {HubDevices: true, IncludeStale: true}} {
		for _, a := range plan.Actions(sel) {
			if a.Reason == ReasonUnregistered {
				t.Fatalf("selection %+v deletes unregistered device %s", sel, a.ID)
			}
		}
	}
	var mine []Action
	for _, a := range plan.Actions(Selection{UnregisteredDevices: true}) {
		if a.Reason == ReasonUnregistered {
			mine = append(mine, a)
		}
	}
	if len(mine) != 2 || mine[0].Kind != DeleteHubDevice || mine[0].ETag == "" || mine[0].Record != "" {
		t.Fatalf("unregistered actions = %+v, want 2 hub-device deletes by ETag", mine)
	}

	// The device made on the hub changes after the scan: it is kept.
	if err := f.emu.AddHubDevice(ctx, hub1, "Made-On-The-Hub"); err != nil {
		t.Fatal(err)
	}
	job, err := f.engine.NewJob(&Plan{Host: plan.Host, Unregistered: plan.Unregistered}, Selection{UnregisteredDevices: true})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := f.engine.Run(ctx, job, RunOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := sum.Outcomes[DeleteHubDevice]; o[OutcomeDeleted] != 1 || o[OutcomeChanged] != 1 {
		t.Errorf("hub-device outcomes %v, want 1 deleted and 1 changed since the scan", o)
	}
	if f.hubHas(t, lost.AssignedHub, lost.DeviceID) || !f.hubHas(t, hub1, "Made-On-The-Hub") {
		t.Error("want the record-less fleet device deleted and the changed one kept")
	}
	for _, id := range fleet[1:] {
		st, err := f.dps.GetRegistrationState(ctx, id)
		if err != nil || !f.hubHas(t, st.AssignedHub, st.DeviceID) {
			t.Fatalf("provisioned device %s was touched: %v", id, err)
		}
	}
	if !strings.Contains(plan.Unregistered[0].Detail, "no registration record") {
		t.Errorf("detail %q does not say what is wrong", plan.Unregistered[0].Detail)
	}
}
