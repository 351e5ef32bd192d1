package tui

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// registerTutorialDevice registers flowRegID through the tutorial group and
// returns its hub, the hub's registry client and the device key.
func registerTutorialDevice(t *testing.T, target *Target) (string, *hub.RegistryClient, keys.Key) {
	t.Helper()
	ctx := context.Background()
	k, err := keys.ParseKey(tutorialDeviceKey)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := target.Device("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := dc.BeginRegister(ctx, flowRegID, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	s, err := target.Service.GetRegistrationState(ctx, flowRegID)
	if err != nil || s.AssignedHub == "" {
		t.Fatalf("registration: %+v, %v", s, err)
	}
	reg, err := target.Registry(s.AssignedHub)
	if err != nil {
		t.Fatal(err)
	}
	return s.AssignedHub, reg, k
}

// connectDevice connects the device over MQTT (paho) and answers method
// "add" with the sum of a and b; other methods get no answer.
func connectDevice(t *testing.T, target *Target, emu *emulator.Emulator, hubHost string, k keys.Key) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("ssl://" + target.HubMQTTEndpoints[strings.ToLower(hubHost)]).SetClientID(flowRegID).
		SetUsername(hubHost + "/" + flowRegID + "/?api-version=2021-04-12").
		SetPassword(keys.SignSAS(hubHost+"/devices/"+flowRegID, k, "", time.Now().Add(time.Hour))).
		SetTLSConfig(&tls.Config{RootCAs: emu.CertPool()}).SetProtocolVersion(4).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	answer := func(_ paho.Client, m paho.Message) {
		name, rid, _ := strings.Cut(strings.TrimPrefix(m.Topic(), "$iothub/methods/POST/"), "/?$rid=")
		if name == "add" {
			var in struct{ A, B int }
			json.Unmarshal(m.Payload(), &in)
			out, _ := json.Marshal(map[string]int{"sum": in.A + in.B})
			c.Publish("$iothub/methods/res/200/?$rid="+rid, 0, false, out)
		}
	}
	if tok := c.Subscribe("$iothub/methods/POST/#", 0, answer); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return c
}

func fastPoll(t *testing.T) {
	old := hubDevicePoll
	hubDevicePoll = 200 * time.Millisecond
	t.Cleanup(func() { hubDevicePoll = old })
}

// openTutorialRecord opens the tutorial group and, with enter on the
// device's record, its hub device view.
func openTutorialRecord(f *flow) {
	f.waitFor("browse", emulator.TutorialGroupID)
	f.keys("/")
	f.typeText("legacy")
	f.waitFor("filter", "1/2")
	f.keys("enter", "enter")
	f.waitFor("open group", "Group mylegacydevices", "sn-007-888", "1/1")
	f.keys("enter")
	f.waitFor("open hub device", "Hub device "+flowRegID, "Status enabled", "Connection ", "Desired properties", "Reported properties")
}

// TestFlowHubDeviceLiveMethodAndDesired: enter on a registration record
// shows its hub device; a twin change made elsewhere shows up while it is
// open; a method is called on the device connected over MQTT, and refused
// in plain words when it is not; a desired patch is written under the
// twin's ETag, and a 412 shows the new twin instead of overwriting it.
func TestFlowHubDeviceLiveMethodAndDesired(t *testing.T) {
	fastPoll(t)
	target, emu := startEmulator(t, 0)
	hubHost, reg, k := registerTutorialDevice(t, target)
	ctx := context.Background()
	f := startFlow(t, target, false)
	openTutorialRecord(f)
	f.waitFor("not connected yet", "Connection Disconnected")

	if _, err := reg.UpdateTwin(ctx, flowRegID, hub.TwinPatch{Properties: &hub.TwinPatchProperties{Desired: dps.TwinCollection{"interval": 42}}}, nil); err != nil {
		t.Fatal(err)
	}
	f.waitFor("live twin", `"interval": 42`)

	f.keys("m")
	f.waitFor("method form", "Direct method", "Payload (JSON)")
	f.typeText("add")
	f.keys("enter")
	f.typeText(`{"a":2,"b":3}`)
	f.keys("enter", "enter")
	f.waitFor("not online", "is not online (not connected to "+hubHost)

	dev := connectDevice(t, target, emu, hubHost, k)
	f.waitFor("live connection", "Connection Connected")
	f.keys("enter")
	f.waitFor("method answered", `device answered: status 200, payload {"sum":5}`)
	f.keys("esc", "m")
	f.typeText("silent")
	f.keys("enter", "enter", "backspace", "backspace")
	f.typeText("5")
	f.keys("enter")
	f.waitFor("no answer", `did not answer method "silent" in time (504)`)
	f.keys("esc")

	f.keys("u")
	f.waitFor("desired form", "Desired patch")
	f.typeText(`{"mode":"eco"}`)
	// The twin changes after the form was opened: the patch must not win.
	if _, err := reg.UpdateTwin(ctx, flowRegID, hub.TwinPatch{Properties: &hub.TwinPatchProperties{Desired: dps.TwinCollection{"interval": 43}}}, nil); err != nil {
		t.Fatal(err)
	}
	f.keys("enter")
	f.waitFor("412", "the twin changed elsewhere", `"interval": 43`)
	if tw, err := reg.GetTwin(ctx, flowRegID); err != nil || tw.Properties.Desired["mode"] != nil {
		t.Fatalf("a 412 must not write the patch: %+v, %v", tw.Properties, err)
	}
	f.keys("enter")
	f.waitFor("written", "desired properties of "+flowRegID+" updated", `"mode": "eco"`)
	if tw, err := reg.GetTwin(ctx, flowRegID); err != nil || tw.Properties.Desired["mode"] != "eco" || tw.Properties.Desired["interval"] != float64(43) {
		t.Fatalf("the patch merges over the new version: %+v, %v", tw.Properties, err)
	}

	dev.Disconnect(50)
	f.waitFor("disconnected, live", "Connection Disconnected")

	if err := reg.DeleteDevice(ctx, flowRegID, nil); err != nil {
		t.Fatal(err)
	}
	f.waitFor("deleted, live", "is not in hub "+hubHost)
	if s := f.screen(); strings.Contains(s, "Status enabled") || strings.Contains(s, `"mode": "eco"`) {
		t.Fatalf("a deleted device still shows what it was:\n%s", s)
	}
}

// TestFlowHubDeviceReadOnly: under --readonly the hub device view shows
// the device but offers neither a method call nor a desired patch.
func TestFlowHubDeviceReadOnly(t *testing.T) {
	target, _ := startEmulator(t, 0)
	registerTutorialDevice(t, target)
	f := startFlow(t, target, true)
	openTutorialRecord(f)
	if s := f.screen(); strings.Contains(s, "m call a direct method") || strings.Contains(s, "update desired") || !strings.Contains(s, "c copy") {
		t.Fatalf("read-only footer:\n%s", s)
	}
	f.keys("m")
	f.keys("u")
	time.Sleep(200 * time.Millisecond)
	if s := f.screen(); strings.Contains(s, "Direct method") || strings.Contains(s, "Desired patch") {
		t.Fatalf("read-only opened a write form:\n%s", s)
	}
}

// TestGroupEnterOnRecordWithoutHub: a record that names no hub says so.
func TestHubDeviceRecordWithoutHub(t *testing.T) {
	c := testCommon(t, 80, 24)
	tb := newRecordTable(c, 1)
	tb.Append([]record{{id: "r1", status: dps.StatusFailed}}, false)
	msg := openHubDevice(c, tb)()
	if fm, ok := msg.(flashMsg); !ok || !strings.Contains(fm.text, "r1 is failed and names no hub") {
		t.Fatalf("got %#v", msg)
	}
}

// TestHubDeviceWithoutConnectionString: a hub the target has no
// connection string for says what to set, and reads nothing.
func TestHubDeviceWithoutConnectionString(t *testing.T) {
	c := testCommon(t, 80, 20)
	v := newHubDeviceView(c, "dev-1", "hub-1.azure-devices.net")
	if cmd := v.Init(); cmd != nil {
		t.Fatal("a view without a registry client must not read")
	}
	if out := plain(v.View()); !strings.Contains(out, "no IoT Hub connection string for hub-1.azure-devices.net") || !strings.Contains(out, "IOTHUB_CONNECTION_STRING") {
		t.Fatalf("view:\n%s", out)
	}
}

// TestHubDeviceDropsStaleReads: a read older than the last one asked for,
// and its tick, are dropped.
func TestHubDeviceDropsStaleReads(t *testing.T) {
	c := testCommon(t, 80, 20)
	v := &hubDeviceView{c: c, vid: 1, deviceID: "d", hubHost: "h", gen: 2}
	v.Update(hubDeviceReadMsg{gen: 1, dev: hub.Device{Status: "enabled"}})
	if v.dev != nil {
		t.Fatal("a stale read was shown")
	}
	if cmd := v.Update(hubDevicePollMsg{gen: 1}); cmd != nil {
		t.Fatal("a stale tick read again")
	}
	if cmd := v.Update(hubDeviceReadMsg{gen: 2, dev: hub.Device{Status: "enabled"}}); v.dev == nil || cmd == nil {
		t.Fatal("the current read is shown and schedules the next")
	}
}
