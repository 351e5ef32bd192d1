package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
)

// standaloneEmulator starts an emulator and points the commands at it
// through the environment, so two commands can use it at once.
func standaloneEmulator(t *testing.T) {
	t.Helper()
	em, err := emulator.Start(t.Context(), emulator.Options{DataDir: t.TempDir(), Seed: "demo", HTTPSAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	env := em.Env()
	t.Setenv("DPS_CONNECTION_STRING", env.DPSConnectionString)
	t.Setenv("DPS_CA_FILE", env.CAFile)
	t.Setenv("DPS_ID_SCOPE", env.IDScope)
	t.Setenv("DPS_DEVICE_ENDPOINT", env.DeviceEndpoint)
	t.Setenv("DPS_MQTT_ENDPOINT", env.MQTTEndpoint)
	for i, cs := range env.HubConnectionStrings {
		suffix := ""
		if i > 0 {
			suffix = "_" + strconv.Itoa(i)
		}
		t.Setenv("IOTHUB_CONNECTION_STRING"+suffix, cs)
		t.Setenv("IOTHUB_MQTT_ENDPOINT"+suffix, env.HubMQTTEndpoints[i])
	}
}

// waitFor waits until buf holds want.
func waitFor(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 20 s:\n%s", want, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRegisterReportsAndAnswersMethods: the tutorial end to end from one
// terminal: the device registers over MQTT (and WebSockets), reports its
// properties, then answers a direct method invoked with `hub method
// invoke` and shows a desired change from `hub twin update`, until it is
// interrupted, which ends it cleanly.
func TestRegisterReportsAndAnswersMethods(t *testing.T) {
	c := newCLI(t)
	standaloneEmulator(t)
	for _, tr := range []string{"mqtt", "mqtt-ws"} {
		rid := "twin-" + tr
		ctx, cancel := context.WithCancel(t.Context())
		var out, errOut syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"--state-dir", c.stateDir, "register", "--registration-id", rid, "--group", "mylegacydevices",
				"--transport", tr, "--report", `{"firmware":"1.0","battery":80}`, "--answer-methods"}, stdio{strings.NewReader(""), &out, &errOut})
		}()
		waitFor(t, &errOut, "answering direct methods")
		for _, want := range []string{`reported properties {"battery":80,"firmware":"1.0"}`, "reported $version 2", "desired properties ($version 1): {}"} {
			if !strings.Contains(errOut.String(), want) {
				t.Errorf("%s: stderr lacks %q:\n%s", tr, want, errOut.String())
			}
		}
		if !strings.Contains(out.String(), "Assigned hub:") {
			t.Errorf("%s: the result is not printed before serving:\n%s", tr, out.String())
		}

		var res hub.MethodResult
		if err := json.Unmarshal([]byte(c.ok("hub", "method", "invoke", rid, "reboot", "--payload", `{"delay":1}`, "-o", "json")), &res); err != nil ||
			res.Status != 200 || !sameJSONText(string(res.Payload), `{"method":"reboot","request":{"delay":1}}`) {
			t.Fatalf("%s: invoke: %+v %s, %v", tr, res, res.Payload, err)
		}
		waitFor(t, &errOut, `direct method "reboot" called with {"delay":1}: answered 200`)
		c.ok("hub", "twin", "update", rid, "--desired", `{"interval":30}`)
		waitFor(t, &errOut, `desired properties changed ($version 2): {"interval":30}`)
		var tw struct{ Twin hub.Twin }
		if err := json.Unmarshal([]byte(c.ok("hub", "device", "show", rid, "-o", "json")), &tw); err != nil || tw.Twin.Properties.Reported["firmware"] != "1.0" {
			t.Errorf("%s: the service side sees %+v, %v", tr, tw.Twin.Properties, err)
		}

		cancel()
		select {
		case code := <-done:
			if code != 0 || !strings.Contains(errOut.String(), "stopped answering direct methods") {
				t.Errorf("%s: interrupted: exit %d\n%s", tr, code, errOut.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: register did not stop when interrupted", tr)
		}
	}
}

func TestRegisterTwinFlagErrors(t *testing.T) {
	c := newCLI(t)
	args := []string{"register", "--registration-id", "d", "--group", "mylegacydevices"}
	c.fails(2, append(args, "--report", `{"a":1}`), "need MQTT to the hub", "no twin and no direct-method channel", "--transport mqtt", "--transport mqtt-ws")
	c.fails(2, append(args, "--answer-methods", "--transport", "https"), "need MQTT to the hub")
	c.fails(2, append(args, "--transport", "mqtt", "--report", `[1]`), "--report must be a JSON object", "e.g.")
	c.fails(2, append(args, "--transport", "mqtt", "--report", `{`), "--report must be a JSON object")
	c.fails(2, append(args, "--transport", "mqtt", "--report", `null`), "--report must be a JSON object", "null")
}

func sameJSONText(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
