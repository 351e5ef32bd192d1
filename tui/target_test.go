package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// With a local (emulator) service target, simulate never falls back to the
// global endpoint: it refuses and says to set the device endpoint.
func TestSimulateRefusesTheGlobalEndpointForALocalTarget(t *testing.T) {
	target, emu := startEmulator(t, 0)
	for _, endpoint := range []string{"", device.DefaultProvisioningHost} {
		target.DeviceEndpoint = endpoint
		c := testCommon(t, 140, 30)
		c.Target, c.Now = target, time.Now
		v := newSimulateView(c, emulator.TutorialGroupID, "dev-1")
		h := harness(t, c, v)
		h.press("enter")
		out := strings.Join(strings.Fields(plain(v.View())), " ")
		if !strings.Contains(out, "the DPS at "+target.Service.Host()+" is local (an emulator), but the device endpoint is") ||
			!strings.Contains(out, "Set DPS_DEVICE_ENDPOINT to the emulator's device endpoint") || strings.Contains(out, "register request sent") {
			t.Fatalf("endpoint %q: simulate should refuse:\n%s", endpoint, plain(v.View()))
		}
	}
	if _, err := target.Service.GetRegistrationState(context.Background(), "dev-1"); !dps.IsNotFound(err) {
		t.Fatalf("no registration may have happened: %v", err)
	}
	target.DeviceEndpoint = emu.Env().DeviceEndpoint
	if _, err := target.Device(""); err != nil {
		t.Fatalf("the emulator's own endpoint is fine: %v", err)
	}
}

// The header names the device endpoint in use.
func TestHeaderShowsTheDeviceEndpoint(t *testing.T) {
	m := newTestApp(t, 140, 30, false)
	m.c.Target.DeviceEndpoint = "127.0.0.1:8443"
	if line := strings.Split(plain(screen(m)), "\n")[0]; !strings.Contains(line, "scope 0ne00000A0A  device 127.0.0.1:8443") {
		t.Fatalf("header %q", line)
	}
}

// With FailFast (as the console sets it up), a target that cannot be
// reached is reported in the groups view within a second, with what failed
// and what to check, instead of after half a minute of retries of "0
// groups"; r lists the groups once the target is back.
func TestGroupsViewReportsAnUnreachableTargetAtOnce(t *testing.T) {
	dir := t.TempDir()
	target, emu := startEmulatorAt(t, dir, 0)
	opts := &dps.ClientOptions{}
	opts.Transport = target.HTTPClient // the client's own retries, as the console has them
	svc, err := dps.NewClientFromConnectionString(emu.Env().DPSConnectionString, opts)
	if err != nil {
		t.Fatal(err)
	}
	target.Service = svc
	FailFast(target.HTTPClient)
	emu.Close()
	target.HTTPClient.CloseIdleConnections()

	c := testCommon(t, 160, 20)
	c.Target = target
	start := time.Now()
	h := harness(t, c, newGroupsView(c))
	v := h.v.(*groupsView)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a stopped target took %s to report", d)
	}
	out := strings.Join(strings.Fields(plain(v.View())), " ")
	if !strings.Contains(out, "cannot reach "+svc.Host()+" (connect: connection refused)") || !strings.Contains(out, "connection refused") ||
		!strings.Contains(out, "check that it is running and reachable from here") || !strings.Contains(out, "r retries") {
		t.Fatalf("the view should say the target cannot be reached:\n%s", plain(v.View()))
	}

	startEmulatorAt(t, dir, 0) // back, on the same port
	h.press("r")
	if out := plain(v.View()); v.err != "" || !strings.Contains(out, emulator.DemoHashedGroup) || v.Status() != "2 groups" {
		t.Fatalf("r should list the groups once the target is back (err %q):\n%s", v.err, out)
	}
}
