package interop

import (
	"context"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// TestNodeMQTTRegistration runs js/mqtt_register.js: the official device SDK
// registers over MQTT on port 8883 through the demo's tutorial group.
func TestNodeMQTTRegistration(t *testing.T) {
	e := startEmulator(t, 25, emulator.Options{Seed: "demo", MQTTAddr: "127.0.25.1:8883"})
	const rid = "node-mqtt-device"
	groupKey, _ := keys.ParseKey(emulator.TutorialGroupKey)
	devKey, _ := keys.DeriveDeviceKey(groupKey, rid)
	out := runNode(t, e, "mqtt_register.js", "REGISTRATION_ID="+rid, "DEVICE_KEY="+devKey.Base64())
	if !strings.Contains(out, "ok registered over MQTT") || !strings.Contains(out, "ok wrong key rejected") {
		t.Fatal("a step did not pass")
	}
	hub := strings.TrimPrefix(strings.Split(e.Env().HubConnectionStrings[0], ";")[0], "HostName=")
	if _, err := e.HubDevice(context.Background(), hub, rid); err != nil {
		t.Fatalf("the device is not in the tutorial group's hub: %v", err)
	}
}
