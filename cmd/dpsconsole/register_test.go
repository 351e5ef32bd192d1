package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// tutorialGroupKey is the demo seed's mylegacydevices primary key (the
// tutorial's).
const tutorialGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="

func TestRegisterOnEmbeddedEmulator(t *testing.T) {
	c := newCLI(t)
	rid := "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	code, out, errOut := c.run("register", "--registration-id", rid, "--group", "mylegacydevices", "--telemetry", "2")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"register request sent", "HTTP 202 assigning, operation 5.", "Retry-After 1s", "poll 1 sent", "HTTP 200 assigned", "telemetry 2/2 sent"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, want := range []string{"Status:", "assigned", "Assigned hub:", "mylegacydevices", "2 of 2 messages sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}

	// The same device with the key derived by hand, as JSON: the raw state.
	dk, err := keys.DeriveDeviceKeyString(tutorialGroupKey, rid)
	if err != nil {
		t.Fatal(err)
	}
	var st dps.DeviceRegistrationState
	if err := json.Unmarshal([]byte(c.ok("register", "--registration-id", rid, "--device-key", dk, "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != dps.StatusAssigned || st.DeviceID != rid {
		t.Fatalf("state %+v", st)
	}
}

func TestRegisterErrors(t *testing.T) {
	c := newCLI(t)
	errOut := c.fails(1, []string{"register", "--registration-id", "dev-1", "--group-key", tutorialGroupKey[:44]},
		"HTTP 401", "401002", "derive the device key from the group key")
	if strings.Contains(errOut, tutorialGroupKey[:44]) {
		t.Error("the key appears in the output")
	}
	c.fails(2, []string{"register", "--registration-id", "dev-1"}, "exactly one key source")
	c.fails(2, []string{"register", "--group", "g"}, "--registration-id is required")
	c.fails(2, []string{"register", "--registration-id", "dev 1", "--group", "g"}, "--registration-id")
	c.fails(2, []string{"register", "--registration-id", "d", "--device-key", "x", "--secondary"}, "--secondary only goes with --group")
	c.fails(2, []string{"register", "--registration-id", "d", "--group", "g", "--payload", "{"}, "--payload is not valid JSON")
	c.fails(1, []string{"register", "--registration-id", "d", "--group", "nope"}, `group "nope" does not exist`)
}

// TestRegisterOverMQTT: --transport mqtt and mqtt-ws register over the
// emulator's MQTT listener and its WebSocket endpoint, the steps show the
// MQTT exchange, and --telemetry follows the transport to the hub.
func TestRegisterOverMQTT(t *testing.T) {
	c := newCLI(t)
	for tr, url := range map[string]string{"mqtt": "mqtts://", "mqtt-ws": "wss://"} {
		rid := tr + "-cli-device"
		code, out, errOut := c.run("register", "--registration-id", rid, "--group", "mylegacydevices", "--transport", tr, "--telemetry", "2")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", tr, code, out, errOut)
		}
		for _, want := range []string{"over " + tr, "MQTT CONNECT to " + url, "CONNACK 0: connected", "SUBSCRIBE $dps/registrations/res/#: granted QoS 1",
			"register request sent on $dps/registrations/PUT/iotdps-register/?$rid=1", "res/202 assigning, operation 5.", "retry-after 1s",
			"poll 1 sent on $dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=5.", "poll 1: res/200 assigned", "telemetry 2/2 sent to 127.0.0.1:", " over " + tr + " ("} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", tr, want, errOut)
			}
		}
		if !strings.Contains(out, "2 of 2 messages sent") {
			t.Errorf("%s: stdout:\n%s", tr, out)
		}
		errOut = c.fails(1, []string{"register", "--registration-id", "dev-1", "--group-key", tutorialGroupKey[:44], "--transport", tr},
			"401", "wrong or underived key")
		if strings.Contains(errOut, tutorialGroupKey[:44]) {
			t.Error("the key appears in the output")
		}
	}
	c.fails(2, []string{"register", "--registration-id", "d", "--group", "g", "--transport", "amqp"}, "--transport", "https, mqtt or mqtt-ws")
}
