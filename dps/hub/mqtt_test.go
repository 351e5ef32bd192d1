package hub_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
	"github.com/dpsconsole/dpsconsole/keys"
)

// TestTelemetryOverMQTT: messages published QoS 1 on the device's events
// topic are acknowledged and counted by the hub; a wrong key gets no
// acknowledgement: the hub refuses its CONNECT with return code 5, and the
// error says to use the registered key.
func TestTelemetryOverMQTT(t *testing.T) {
	for _, tr := range []mqttconn.Transport{mqttconn.MQTT, mqttconn.WebSockets} {
		t.Run(string(tr), func(t *testing.T) {
			em, reg, devs, opts := provisioned(t, 1)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			// MQTT goes to the hub's own listener; WebSockets to its HTTPS port, the hub host.
			o := &hub.ClientOptions{ClientOptions: opts, Transport: tr}
			if tr == mqttconn.MQTT {
				o.MQTTHost = em.Env().HubMQTTEndpoints[0]
			}
			dc, err := hub.NewDeviceClient(reg.Host(), "dev-00", devs["dev-00"], o)
			if err != nil {
				t.Fatal(err)
			}
			defer dc.Close()
			for i := range 3 {
				err := dc.SendEvent(ctx, fmt.Appendf(nil, `{"n":%d}`, i), &hub.SendEventOptions{
					Properties: map[string]string{"source": "test run"}, MessageID: fmt.Sprint(i), ContentType: "application/json"})
				if err != nil {
					t.Fatal(err)
				}
			}
			dc.Close() // the next message opens a new connection
			if err := dc.SendEvent(ctx, []byte(`{"n":3}`), nil); err != nil {
				t.Fatal(err)
			}
			d, err := em.HubDevice(ctx, reg.Host(), "dev-00")
			if err != nil || d.MessageCount != 4 {
				t.Fatalf("hub device = %+v, %v; want 4 messages counted", d, err)
			}

			wrong, err := hub.NewDeviceClient(reg.Host(), "dev-00", keys.GenerateKey(), o)
			if err != nil {
				t.Fatal(err)
			}
			defer wrong.Close()
			err = wrong.SendEvent(ctx, []byte("x"), nil)
			if err == nil || !strings.Contains(err.Error(), "CONNACK 5, not authorized") || !strings.Contains(err.Error(), "wrong key for device dev-00") {
				t.Fatalf("wrong key: %v, want CONNACK 5 and what to do", err)
			}
			if d, _ := em.HubDevice(ctx, reg.Host(), "dev-00"); d.MessageCount != 4 {
				t.Errorf("%d messages counted after the refused one, want 4", d.MessageCount)
			}
		})
	}
}
