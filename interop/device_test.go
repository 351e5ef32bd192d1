package interop

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// TestNodeDeviceSDKs runs js/device.js: the Node provisioning device SDK
// registers through a hashed group with a derived key, the Node device SDK
// sends telemetry to the assigned hub with that key, and the Node hub
// service SDK gets and deletes the device identity. With assignment delay 0
// the register answers 202 with Retry-After 0 and the first poll 200; with
// 1 s (the CLI's default) Node waits out Retry-After 1 and polls again.
func TestNodeDeviceSDKs(t *testing.T) {
	for _, delay := range []time.Duration{0, time.Second} {
		t.Run("delay "+delay.String(), func(t *testing.T) { testNodeDeviceSDKs(t, delay) })
	}
}

func testNodeDeviceSDKs(t *testing.T, delay time.Duration) {
	e := startEmulator(t, 22, emulator.Options{Seed: "none", AssignmentDelay: delay})
	// Every wait is bounded: a hang fails here, with a message, not at the
	// package timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := serviceClient(t, e)
	gk := hashedGroup(ctx, t, svc, "node-devices")

	const rid, messages = "node-sensor-001", 3
	out := runNode(t, e, "device.js", "STAGE=register", "REG_ID="+rid, "GROUP_KEY="+gk.Base64(), "TELEMETRY_COUNT=3")
	var res struct{ AssignedHub, DeviceID, Status, Substatus string }
	_, line, ok := strings.Cut(out, "result ")
	if !ok || json.Unmarshal([]byte(strings.TrimSpace(line)), &res) != nil {
		t.Fatalf("no result line in the script output")
	}
	if res.Status != "assigned" || res.DeviceID != rid || res.Substatus != "initialAssignment" {
		t.Fatalf("node result %+v", res)
	}
	rec, err := svc.GetRegistrationState(ctx, rid)
	if err != nil || rec.AssignedHub != res.AssignedHub || rec.Status != dps.StatusAssigned {
		t.Fatalf("service API record %+v, %v", rec, err)
	}
	d, err := e.HubDevice(ctx, res.AssignedHub, rid)
	if err != nil || d.MessageCount != messages {
		t.Fatalf("hub device %+v, %v; want %d messages counted", d, err, messages)
	}

	runNode(t, e, "device.js", "STAGE=registry", "HUB_HOST="+res.AssignedHub, "DEVICE_ID="+rid)
	if _, err := e.HubDevice(ctx, res.AssignedHub, rid); err == nil {
		t.Fatal("the device is still in the hub after the Node registry deleted it")
	}
}
