package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
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

// TestHubMethodInvoke runs "hub method invoke" against a standalone
// emulator (connection strings in the environment, as for a real DPS) with
// a device connected over MQTT that answers.
func TestHubMethodInvoke(t *testing.T) {
	c := newCLI(t)
	em, err := emulator.Start(t.Context(), emulator.Options{DataDir: t.TempDir(), Seed: "demo", HTTPSAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	env := em.Env()
	t.Setenv("DPS_CONNECTION_STRING", env.DPSConnectionString)
	t.Setenv("DPS_CA_FILE", env.CAFile)
	t.Setenv("IOTHUB_CONNECTION_STRING", env.HubConnectionStrings[0])
	t.Setenv("IOTHUB_CONNECTION_STRING_1", env.HubConnectionStrings[1])

	// A demo device, its hub and key as the registry reports them.
	const dev = "fleet-sensor-002"
	var shown deviceAndTwin
	if err := json.Unmarshal([]byte(c.ok("hub", "device", "show", dev, "-o", "json", "--show-keys")), &shown); err != nil {
		t.Fatal(err)
	}
	key, err := keys.ParseKey(shown.Device.Authentication.SymmetricKey.PrimaryKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	var host, mqttAddr string
	for i, cs := range env.HubConnectionStrings {
		p, _ := keys.ParseServiceConnectionString(cs)
		if _, err := em.HubDevice(t.Context(), p.HostName, dev); err == nil {
			host, mqttAddr = p.HostName, env.HubMQTTEndpoints[i]
		}
	}
	o := paho.NewClientOptions().AddBroker("ssl://" + mqttAddr).SetClientID(dev).SetUsername(host + "/" + dev + "/?api-version=2021-04-12").
		SetPassword(keys.SignSAS(host+"/devices/"+dev, key, "", time.Now().Add(time.Hour))).
		SetTLSConfig(&tls.Config{RootCAs: em.CertPool()}).SetProtocolVersion(4).SetAutoReconnect(false)
	pc := paho.NewClient(o)
	if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pc.Disconnect(100)
	answer := func(_ paho.Client, m paho.Message) {
		name, rid, _ := strings.Cut(strings.TrimPrefix(m.Topic(), "$iothub/methods/POST/"), "/?$rid=")
		status, body := 200, `{"echo":`+string(m.Payload())+`}`
		if name == "fail" {
			status, body = 500, `{"error":"disk full"}`
		}
		pc.Publish("$iothub/methods/res/"+strconv.Itoa(status)+"/?$rid="+rid, 0, false, body)
	}
	if tok := pc.Subscribe("$iothub/methods/POST/#", 0, answer); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	var res hub.MethodResult
	out := c.ok("hub", "method", "invoke", dev, "echo", "--payload", `{"a":1}`, "-o", "json")
	var payload bytes.Buffer
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Status != 200 || json.Compact(&payload, res.Payload) != nil || payload.String() != `{"echo":{"a":1}}` {
		t.Fatalf("invoke -o json: %v\n%s", err, out)
	}
	if out := c.ok("hub", "method", "invoke", dev, "echo", "--timeout", "10s"); !strings.Contains(out, "Status:") || !strings.Contains(out, `{"echo":null}`) {
		t.Errorf("invoke table:\n%s", out)
	}
	if errOut := c.fails(1, []string{"hub", "method", "invoke", dev, "fail"}, "disk full"); !strings.Contains(errOut, "status 500") {
		t.Errorf("a failing method: stderr %s", errOut)
	}
	if out := c.ok("hub", "device", "show", dev); !strings.Contains(out, "Connected") {
		t.Errorf("device show of a connected device:\n%s", out)
	}
}
