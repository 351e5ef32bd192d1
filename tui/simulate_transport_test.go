package tui

import (
	"strings"
	"testing"
	"time"
)

// TestSimulateOverMQTT: the transport field makes the simulated device
// register over MQTT, the timeline shows the MQTT steps, and telemetry goes
// over MQTT too; an unknown transport is refused before anything runs. A
// second run through the group goes over WebSockets.
func TestSimulateOverMQTT(t *testing.T) {
	target, emu := startEmulator(t, 700*time.Millisecond)
	c := testCommon(t, 160, 40)
	c.Target, c.Now = target, time.Now
	const rid = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	v := newSimulateView(c, "", rid)
	h := harness(t, c, v)
	v.f.Set(sfDeviceKey, tutorialDeviceKey)
	v.f.Set(sfTransport, "amqp")
	h.press("esc", "enter")
	if !strings.Contains(v.err, "Transport: unknown transport \"amqp\": use https, mqtt or mqtt-ws") || v.tl.RegID() != "" {
		t.Fatalf("err %q, run %q", v.err, v.tl.RegID())
	}
	// ←/→ on the field pick the transport.
	v.f.Set(sfTransport, "")
	v.f.FocusOn(sfTransport)
	for _, want := range []string{"https", "mqtt", "mqtt-ws", "https"} {
		h.press("right")
		if got := v.f.Value(sfTransport); got != want {
			t.Fatalf("→ gave %q, want %q", got, want)
		}
	}
	h.press("left", "left")
	if got := v.f.Value(sfTransport); got != "mqtt" {
		t.Fatalf("← ← gave %q, want mqtt", got)
	}
	h.press("enter")
	out := plain(v.View())
	for _, want := range []string{"connecting to mqtts://", "MQTT CONNECT to mqtts://", "CONNACK 0: connected", "SUBSCRIBE $dps/registrations/res/#: granted QoS 1",
		"register request sent on $dps/registrations/PUT/iotdps-register/?$rid=1", "accepted (res/202)", "Retry-After 1s",
		"poll 1 sent on $dps/registrations/GET/iotdps-get-operationstatus/?$rid=2", "poll 1: assigned (res/200)", "✓ assigned → hub"} {
		if !strings.Contains(out, want) {
			t.Fatalf("timeline lacks %q:\n%s", want, out)
		}
	}
	h.press("ctrl+t")
	if out := plain(v.View()); !strings.Contains(out, "Telemetry: 1 sent") {
		t.Fatalf("telemetry over MQTT:\n%s", out)
	}
	hub := v.tl.Result().AssignedHub
	if d, err := emu.HubDevice(t.Context(), hub, rid); err != nil || d.MessageCount != 1 {
		t.Fatalf("hub device %+v, %v; want 1 message", d, err)
	}

	// Through the group (its key fetched off the event loop) over WebSockets.
	v.f.Set(sfDeviceKey, "")
	v.f.Set(sfGroup, "mylegacydevices")
	v.f.Set(sfTransport, "mqtt-ws")
	h.press("enter")
	if out := plain(v.View()); !strings.Contains(out, "connecting to wss://") || !strings.Contains(out, "✓ assigned → hub") {
		t.Fatalf("over mqtt-ws through the group:\n%s", out)
	}
	h.press("ctrl+t")
	if d, err := emu.HubDevice(t.Context(), hub, rid); err != nil || d.MessageCount != 2 {
		t.Fatalf("hub device %+v, %v; want 2 messages", d, err)
	}
}
