package interop

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// TestNodeMQTTTransports runs js/mqtt_transports.js on the README layout:
// the official provisioning SDK registers over Mqtt and MqttWs, the official
// device SDK sends telemetry over Mqtt and MqttWs to the assigned hub (its
// own MQTT listener on :8883, WebSockets on :443), and a wrong key is refused
// at CONNECT by the hub over both. Assignment delay 1 s: the SDK waits out
// retry-after=1 and polls again.
func TestNodeMQTTTransports(t *testing.T) {
	e := startEmulator(t, 26, emulator.Options{Seed: "none", AssignmentDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := serviceClient(t, e)
	gk := hashedGroup(ctx, t, svc, "node-mqtt")
	const messages = 3
	out := runNode(t, e, "mqtt_transports.js", "REG_PREFIX=node-sensor", "GROUP_KEY="+gk.Base64(), "TELEMETRY_COUNT=3")
	for _, step := range []string{"register over provisioning Mqtt", "register over provisioning MqttWs", "telemetry over device Mqtt", "telemetry over device MqttWs",
		"wrong key refused at CONNECT over device Mqtt", "wrong key refused at CONNECT over device MqttWs", "wrong key rejected by DPS over MqttWs"} {
		if !strings.Contains(out, "ok "+step) {
			t.Errorf("step %q did not pass", step)
		}
	}
	_, line, ok := strings.Cut(out, "result ")
	var devices []struct{ Transport, DeviceID, AssignedHub string }
	if !ok || json.Unmarshal([]byte(strings.TrimSpace(line)), &devices) != nil || len(devices) != 2 {
		t.Fatalf("no result line in the script output")
	}
	for _, d := range devices {
		rec, err := svc.GetRegistrationState(ctx, d.DeviceID)
		if err != nil || rec.Status != dps.StatusAssigned || rec.AssignedHub != d.AssignedHub {
			t.Errorf("%s: record %+v, %v", d.Transport, rec, err)
		}
		hd, err := e.HubDevice(ctx, d.AssignedHub, d.DeviceID)
		if err != nil || hd.MessageCount != messages {
			t.Errorf("%s: hub device %+v, %v; want %d messages counted (the refused CONNECTs count none)", d.Transport, hd, err, messages)
		}
	}
}

// TestOwnClientsOnDefaultPorts: our device and hub clients, given only the
// host names as a device on real Azure is, register and send telemetry over
// each transport on the README layout: MQTT on :8883 of the DPS and hub
// addresses, WebSockets and HTTPS on :443.
func TestOwnClientsOnDefaultPorts(t *testing.T) {
	e := startEmulator(t, 27, emulator.Options{Seed: "demo"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := dps.NewTransport(e.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	opts := azcore.ClientOptions{Transport: tr}
	env := e.Env()
	groupKey, _ := keys.ParseKey(emulator.TutorialGroupKey)
	for _, transport := range []device.Transport{device.TransportHTTPS, device.TransportMQTT, device.TransportMQTTWS} {
		t.Run(string(transport), func(t *testing.T) {
			rid := "own-" + string(transport)
			key, _ := keys.DeriveDeviceKey(groupKey, rid)
			dc, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: opts, ProvisioningHost: env.DeviceEndpoint, Transport: transport})
			if err != nil {
				t.Fatal(err)
			}
			st, err := dc.Register(ctx, rid, key, &device.RegisterOptions{PollInterval: 100 * time.Millisecond})
			if err != nil || st.Status != dps.StatusAssigned {
				t.Fatalf("register over %s at %s: %+v, %v", transport, dc.Host(), st, err)
			}
			hc, err := hub.NewDeviceClient(st.AssignedHub, st.DeviceID, key, &hub.ClientOptions{ClientOptions: opts, Transport: transport})
			if err != nil {
				t.Fatal(err)
			}
			defer hc.Close()
			if err := hc.SendEvent(ctx, []byte(`{"n":1}`), nil); err != nil {
				t.Fatal(err)
			}
			if d, err := e.HubDevice(ctx, st.AssignedHub, rid); err != nil || d.MessageCount != 1 {
				t.Fatalf("hub device %+v, %v", d, err)
			}
		})
	}
}
