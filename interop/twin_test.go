package interop

import (
	"strings"
	"testing"

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
