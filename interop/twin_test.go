package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// TestNodeTwinSDK runs js/twin.js: azure-iothub's Registry.getTwin,
// Twin.update and Client.invokeDeviceMethod against an emulated hub.
func TestNodeTwinSDK(t *testing.T) {
	e := startEmulator(t, 41, emulator.Options{Seed: "demo"})
	const dev = "fleet-sensor-001" // seeded with the tag fleet=demo
	hubCS := ""
	for _, cs := range e.Env().HubConnectionStrings {
		c, err := keys.ParseServiceConnectionString(cs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.HubDevice(t.Context(), c.HostName, dev); err == nil {
			hubCS = cs
		}
	}
	if hubCS == "" {
		t.Fatalf("the demo seed put %s in no hub", dev)
	}
	out := runNode(t, e, "twin.js", "TWIN_HUB_CS="+hubCS, "DEVICE_ID="+dev)
	for _, step := range []string{"ok getTwin", "ok Twin.update", "ok null removes", "ok stale etag", "ok missing twin", "ok method on a disconnected device"} {
		if !strings.Contains(out, step) {
			t.Errorf("step %q did not pass", step)
		}
	}
}

// TestNodeDeviceTwinOverMQTT runs js/twin_device.js: the Node device SDK
// over MQTT reads its twin, reports properties, gets a desired change and
// answers a direct method that azure-iothub invokes. The device registers
// first (through the demo's tutorial group, over HTTPS) for its hub and key.
func TestNodeDeviceTwinOverMQTT(t *testing.T) {
	e := startEmulator(t, 42, emulator.Options{Seed: "demo"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, err := dps.NewTransport(e.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	tr.Timeout = 30 * time.Second
	defer tr.CloseIdleConnections()
	env := e.Env()
	dc, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr}, ProvisioningHost: env.DeviceEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	const rid = "node-twin-device"
	groupKey, _ := keys.ParseKey(emulator.TutorialGroupKey)
	devKey, _ := keys.DeriveDeviceKey(groupKey, rid)
	p, err := dc.BeginRegister(ctx, rid, devKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond})
	if err != nil || st.AssignedHub == "" {
		t.Fatalf("register: %+v, %v", st, err)
	}
	hubCS := ""
	for _, cs := range env.HubConnectionStrings {
		if c, err := keys.ParseServiceConnectionString(cs); err == nil && c.HostName == st.AssignedHub {
			hubCS = cs
		}
	}
	deviceCS := "HostName=" + st.AssignedHub + ";DeviceId=" + st.DeviceID + ";SharedAccessKey=" + devKey.Base64()
	out := runNode(t, e, "twin_device.js", "TWIN_HUB_CS="+hubCS, "DEVICE_CS="+deviceCS, "DEVICE_ID="+st.DeviceID)
	if strings.HasPrefix(out, "skip ") {
		t.Skip(strings.TrimSpace(out))
	}
	for _, step := range []string{"ok connected over MQTT", "ok device getTwin", "ok reported properties", "ok desired change", "ok direct method answered", "ok method after close"} {
		if !strings.Contains(out, step) {
			t.Errorf("step %q did not pass", step)
		}
	}
}
