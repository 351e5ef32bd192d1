package tui

import (
	"context"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
)

// A device made straight on a hub shows up in :cleanup as its own kind of
// finding, with its hub; it is deleted only after u and a confirmation that
// names how many and on which hubs, and provisioned devices never show up.
func TestCleanupViewReportsUnregisteredHubDevices(t *testing.T) {
	target, emu := startEmulator(t, 0)
	ctx := context.Background()
	hub1 := knownHubs(target, dps.EnrollmentGroup{})[0]
	if err := emu.AddHubDevice(ctx, hub1, "stray-1"); err != nil {
		t.Fatal(err)
	}
	c := testCommon(t, 120, 40)
	c.Target = target
	h := harness(t, c, newCleanupView(c))
	v := h.v.(*cleanupView)

	out := plain(v.View())
	for _, want := range []string{"hub " + hub1, "u Hub devices without a registration record: kept", "unregistered"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the counts lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fleet-sensor") {
		t.Fatalf("a provisioned device is listed:\n%s", out)
	}
	// The drill-down lists it.
	v.row = len(v.counts)
	h.press("enter")
	if out := plain(v.View()); !strings.Contains(out, "stray-1") || !strings.Contains(out, "without a registration record on "+hub1) {
		t.Fatalf("drill-down:\n%s", out)
	}
	v.Escape() // as the root does on esc

	h.press("p")
	if strings.Contains(plain(v.View()), "stray-1") {
		t.Fatalf("the preview deletes it without u:\n%s", plain(v.View()))
	}
	v.Escape()
	h.press("u")
	if v.confirm == nil || !strings.Contains(v.confirm.Text, "1 hub device without a registration record on "+hub1) {
		t.Fatalf("u asks first, naming the count and hubs: %+v", v.confirm)
	}
	h.press("y")
	if !v.sel.UnregisteredDevices || !strings.Contains(plain(v.View()), "deleted too") {
		t.Fatalf("u confirmed: selection %+v", v.sel)
	}
	h.press("h") // another toggle keeps it
	if !v.sel.UnregisteredDevices {
		t.Fatal("h dropped the unregistered devices from the selection")
	}
	h.press("p")
	if out := plain(v.View()); !strings.Contains(out, "stray-1") || !strings.Contains(out, "1 unregistered hub device") {
		t.Fatalf("preview with u:\n%s", out)
	}
	h.press("d", "y")
	if v.summary == nil {
		t.Fatalf("no run: %s", plain(v.View()))
	}
	if _, err := emu.HubDevice(ctx, hub1, "stray-1"); err == nil {
		t.Error("stray-1 is still on the hub")
	}
	if _, err := emu.HubDevice(ctx, hub1, "fleet-sensor-001"); err != nil {
		if _, err2 := emu.HubDevice(ctx, knownHubs(target, dps.EnrollmentGroup{})[1], "fleet-sensor-001"); err2 != nil {
			t.Error("a provisioned fleet device was deleted")
		}
	}
}
