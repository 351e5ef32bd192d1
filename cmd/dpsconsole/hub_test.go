package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/hub"
)

func TestHubCommands(t *testing.T) {
	c := newCLI(t)
	const dev = "fleet-sensor-001" // seeded demo device, tag fleet=demo

	out := c.ok("hub", "device", "show", dev)
	for _, want := range []string{"Device ID:", dev, "Authentication:", "sas", "Twin version:", "1", `{"fleet":"demo"}`, "Desired properties:", "($version 1)", "Reported properties:"} {
		if !strings.Contains(out, want) {
			t.Errorf("device show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Primary key") {
		t.Errorf("device show prints a key without --show-keys:\n%s", out)
	}
	var shown deviceAndTwin
	if err := json.Unmarshal([]byte(c.ok("hub", "device", "show", dev, "-o", "json")), &shown); err != nil ||
		shown.Device.DeviceID != dev || shown.Twin.ETag == "" || shown.Device.Authentication.SymmetricKey != nil {
		t.Fatalf("device show -o json: %+v, %v", shown, err)
	}
	if err := json.Unmarshal([]byte(c.ok("hub", "device", "show", dev, "-o", "json", "--show-keys")), &shown); err != nil ||
		shown.Device.Authentication.SymmetricKey == nil || shown.Device.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Fatalf("device show --show-keys: %+v, %v", shown.Device.Authentication, err)
	}
	hubHost := c.ok("registrations", "show", dev, "-o", "json")
	var rec struct{ AssignedHub string }
	json.Unmarshal([]byte(hubHost), &rec)

	var tw hub.Twin
	out = c.ok("hub", "twin", "update", dev, "--desired", `{"interval":5}`, "--tags", `{"site":"oslo"}`, "--etag", shown.Twin.ETag, "-o", "json")
	if err := json.Unmarshal([]byte(out), &tw); err != nil || tw.Properties.Desired["interval"] != 5.0 || tw.Properties.Desired["$version"] != 2.0 ||
		tw.Tags["site"] != "oslo" || tw.Tags["fleet"] != "demo" {
		t.Fatalf("twin update -o json: %v\n%s", err, out)
	}
	out = c.ok("hub", "twin", "update", dev, "--desired", `{"interval":null}`, "--hub", rec.AssignedHub)
	if !strings.Contains(out, "($version 3)") || strings.Contains(out, "interval") {
		t.Errorf("removing interval:\n%s", out)
	}
	c.fails(1, []string{"hub", "twin", "update", dev, "--tags", `{"a":1}`, "--etag", shown.Twin.ETag}, "412", "read it again")
	c.fails(1, []string{"hub", "twin", "update", dev, "--tags", `{"a.b":1}`}, "400", "ArgumentInvalid")
	c.fails(2, []string{"hub", "twin", "update", dev, "--desired", `[1]`}, "--desired", "not a JSON object")
	c.fails(2, []string{"hub", "twin", "update", dev}, "give --desired, --tags or both")
	c.fails(1, []string{"hub", "twin", "update", "nobody", "--tags", `{"a":1}`}, `no registration record "nobody"`, "--hub")
	c.fails(1, []string{"hub", "device", "show", "nobody", "--hub", rec.AssignedHub}, `device "nobody" is not in hub`)
	c.fails(2, []string{"hub", "device", "show", dev, "--hub", "other.azure-devices.net"}, "no hub connection string is for other.azure-devices.net")
	c.fails(2, []string{"hub", "device", "show", dev, "-o", "yaml"}, "use table or json")

	// Nothing was lost by the refused writes.
	if err := json.Unmarshal([]byte(c.ok("hub", "device", "show", dev, "-o", "json")), &shown); err != nil || shown.Twin.Version != 3 || shown.Twin.Tags["a"] != nil {
		t.Errorf("after refused writes: twin %+v, %v", shown.Twin, err)
	}

	c.fails(1, []string{"hub", "method", "invoke", dev, "reboot", "--payload", `{"delay":1}`}, "404", "DeviceNotOnline", "404103")
	c.fails(2, []string{"hub", "method", "invoke", dev, "reboot", "--timeout", "1s"}, "5s to 5m0s")
	c.fails(2, []string{"hub", "method", "invoke", dev, "reboot", "--payload", `{`}, "not valid JSON")
	c.fails(2, []string{"hub", "method", "invoke", dev}, "accepts 2 arg")
}
