package tui

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/tui/components/timeline"
)

// simulateOver opens :simulate and registers the tutorial device through
// its group over transport tr.
func simulateOver(f *flow, tr string) {
	f.keys(":")
	f.typeText("simulate")
	f.keys("enter")
	f.waitFor("simulate", "Simulate device")
	f.typeText("mylegacydevices")
	f.keys("tab", "tab")
	f.typeText(flowRegID)
	f.keys("tab", "tab")
	f.typeText(tr)
	f.keys("enter")
	f.waitFor("assigned", "✓ assigned → hub")
}

// TestFlowSimulatedDeviceStaysConnected: after registering over MQTT,
// ctrl+o keeps the simulated device connected: a desired change made on
// the service side shows in its timeline, a direct method invoked on the
// service side is answered (200, the echo) and shown, and closing the
// view disconnects the device.
func TestFlowSimulatedDeviceStaysConnected(t *testing.T) {
	fastPoll(t)
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "mylegacydevices")
	simulateOver(f, "mqtt")
	f.keys("ctrl+o")
	f.waitFor("connected", "connected: answering direct methods", "desired properties ($version 1): {}")

	ctx := context.Background()
	s, err := target.Service.GetRegistrationState(ctx, flowRegID)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := target.Registry(s.AssignedHub)
	if err != nil {
		t.Fatal(err)
	}
	waitConnection(t, reg, "Connected", "ctrl+o")
	if _, err := reg.UpdateTwin(ctx, flowRegID, hub.TwinPatch{Properties: &hub.TwinPatchProperties{Desired: dps.TwinCollection{"interval": 42}}}, nil); err != nil {
		t.Fatal(err)
	}
	f.waitFor("desired change", `desired properties changed ($version 2): {"interval":42}`)

	res, err := reg.InvokeMethod(ctx, flowRegID, "reboot", json.RawMessage(`{"delay":5}`), nil)
	if err != nil || res.Status != 200 || string(res.Payload) != `{"method":"reboot","request":{"delay":5}}` {
		t.Fatalf("method answer %+v, %v", res, err)
	}
	f.waitFor("method shown", `direct method "reboot" called with {"delay":5}: answered 200 {"method":"reboot","request":{"delay":5}}`)

	f.keys("enter") // a new run disconnects the old one's device
	waitConnection(t, reg, "Disconnected", "a new run")
	f.waitFor("run again", "✓ assigned → hub", "ctrl+o keeps it connected")
	f.keys("ctrl+o")
	f.waitFor("connected again", "connected: answering direct methods", `desired properties ($version 2): {"interval":42}`)
	waitConnection(t, reg, "Connected", "ctrl+o")

	f.keys("esc", "esc") // leave the field, then close the view
	f.waitFor("view closed", "mylegacydevices")
	waitConnection(t, reg, "Disconnected", "closing the view")
}

// waitConnection waits until the hub reports flowRegID in state want.
func waitConnection(t *testing.T, reg *hub.RegistryClient, want, after string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := reg.GetDevice(context.Background(), flowRegID)
		if err == nil && d.ConnectionState == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the device is %+v, %v; want %s", after, d, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFlowSimulatedDeviceOverHTTPSSaysMQTT: over HTTPS the key says the
// twin and methods need MQTT and which transport to pick, and connects
// nothing.
func TestFlowSimulatedDeviceOverHTTPSSaysMQTT(t *testing.T) {
	fastPoll(t)
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "mylegacydevices")
	simulateOver(f, "https")
	f.keys("ctrl+o")
	f.waitFor("needs MQTT", "need MQTT to the hub", "set Transport to mqtt or")
	if strings.Contains(f.screen(), "connecting to "+flowRegID) {
		t.Fatalf("connected over https:\n%s", f.screen())
	}
}

// TestSimulateReadOnlyHidesStayConnected: under --readonly ctrl+o is
// neither offered nor honoured, even for an assigned device over MQTT.
func TestSimulateReadOnlyHidesStayConnected(t *testing.T) {
	c := testCommon(t, 120, 30)
	c.ReadOnly, c.Keys = true, DefaultKeyMap(true)
	v := newSimulateView(c, "", flowRegID)
	h := harness(t, c, v)
	v.tl.Transport = "mqtt"
	v.tl.Show(timeline.Run{RegID: flowRegID, Result: &dps.DeviceRegistrationState{Status: dps.StatusAssigned, AssignedHub: "hub-1.azure-devices.net", DeviceID: flowRegID}})
	for _, b := range keyBindings(v.Hints()...) {
		if b.Help().Key == "ctrl+o" {
			t.Fatal("read-only hints offer ctrl+o")
		}
	}
	h.press("ctrl+o")
	if v.tl.LiveOn() || strings.Contains(plain(v.View()), " over mqtt") || strings.Contains(plain(v.View()), "ctrl+o") {
		t.Fatalf("read-only connected the device:\n%s", plain(v.View()))
	}
	if msg, ok := v.tl.ToggleLive()().(flashMsg); !ok || !strings.Contains(msg.text, "read-only") {
		t.Fatalf("the timeline itself must refuse under --readonly: %#v", msg)
	}
}
