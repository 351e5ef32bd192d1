package hub_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
	"github.com/dpsconsole/dpsconsole/keys"
)

// deviceOver is dev-00's client to the emulator's hub over tr: MQTT to the
// hub's own listener, WebSockets to its HTTPS port.
func deviceOver(t testing.TB, em *emulator.Emulator, host string, key keys.Key, o hub.ClientOptions, tr mqttconn.Transport) *hub.DeviceClient {
	t.Helper()
	o.Transport = tr
	if tr == mqttconn.MQTT && o.MQTTHost == "" {
		o.MQTTHost = em.Env().HubMQTTEndpoints[0]
	}
	dc, err := hub.NewDeviceClient(host, "dev-00", key, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc.Close)
	return dc
}

func nextPatch(t *testing.T, ch <-chan hub.DesiredPatch) hub.DesiredPatch {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("the desired watch closed")
		}
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no desired patch within 10 s")
	}
	return hub.DesiredPatch{}
}

// TestDeviceTwinOverMQTT: every device-side call against the emulator's
// hub, over MQTT and over WebSockets: the twin read, reported patches with
// their new $version (seen by the service side too), a refused patch with
// the hub's reason, desired changes in order with their $version, and a
// direct method answered with status and payload.
func TestDeviceTwinOverMQTT(t *testing.T) {
	for _, tr := range []mqttconn.Transport{mqttconn.MQTT, mqttconn.WebSockets} {
		t.Run(string(tr), func(t *testing.T) {
			em, reg, devs, opts := provisioned(t, 1)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			dc := deviceOver(t, em, reg.Host(), devs["dev-00"], hub.ClientOptions{ClientOptions: opts}, tr)

			tw, err := dc.GetTwin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			v0 := tw.ReportedVersion()
			v1, err := dc.ReportProperties(ctx, dps.TwinCollection{"firmware": "1.0", "battery": 80})
			if err != nil || v1 != v0+1 {
				t.Fatalf("report: version %d, %v; want %d", v1, err, v0+1)
			}
			v2, err := dc.ReportProperties(ctx, dps.TwinCollection{"battery": nil, "firmware": "1.1"})
			if err != nil || v2 != v1+1 {
				t.Fatalf("second report: version %d, %v; want %d", v2, err, v1+1)
			}
			if tw, err = dc.GetTwin(ctx); err != nil || tw.ReportedVersion() != v2 || tw.Reported["firmware"] != "1.1" || tw.Reported["battery"] != nil {
				t.Fatalf("twin after the patches: %+v, %v", tw, err)
			}
			svc, err := reg.GetTwin(ctx, "dev-00")
			if err != nil || svc.Properties.Reported["firmware"] != "1.1" {
				t.Fatalf("the service sees %+v, %v", svc.Properties, err)
			}

			_, err = dc.ReportProperties(ctx, dps.TwinCollection{"big": strings.Repeat("x", 40_000)})
			var te *hub.TwinError
			if !errors.As(err, &te) || te.Status != 400 || !strings.Contains(err.Error(), "reported properties would be") {
				t.Fatalf("oversized patch: %v, want the hub's 400 and why", err)
			}

			watch, err := dc.WatchDesired(ctx)
			if err != nil {
				t.Fatal(err)
			}
			first := nextPatch(t, watch)
			if !first.Full {
				t.Fatalf("first delivery %+v, want the whole desired properties", first)
			}
			for i := 1; i <= 3; i++ {
				after, err := reg.UpdateTwin(ctx, "dev-00", hub.TwinPatch{Properties: &hub.TwinPatchProperties{Desired: dps.TwinCollection{"interval": i}}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				p := nextPatch(t, watch)
				want := int64(after.Properties.Desired["$version"].(float64))
				if p.Full || p.Version != want || p.Properties["interval"] != float64(i) || p.Properties["$version"] != nil {
					t.Fatalf("patch %d = %+v, want interval %d at $version %d", i, p, i, want)
				}
			}

			err = dc.OnMethod(ctx, func(_ context.Context, c hub.MethodCall) hub.MethodResponse {
				b, _ := json.Marshal(map[string]any{"method": c.Name, "request": c.Payload})
				return hub.MethodResponse{Status: 201, Payload: b}
			})
			if err != nil {
				t.Fatal(err)
			}
			res, err := reg.InvokeMethod(ctx, "dev-00", "reboot", json.RawMessage(`{"delay":1}`), nil)
			if err != nil || res.Status != 201 || !sameJSON(string(res.Payload), `{"method":"reboot","request":{"delay":1}}`) {
				t.Fatalf("method: %+v %s, %v", res, res.Payload, err)
			}
		})
	}
}

// TestDeviceTwinNeedsMQTT: over HTTPS the calls say what to do instead.
func TestDeviceTwinNeedsMQTT(t *testing.T) {
	dc, err := hub.NewDeviceClient("h.example.net", "d", keys.GenerateKey(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.GetTwin(t.Context()); !errors.Is(err, hub.ErrNeedsMQTT) || !strings.Contains(err.Error(), "use transport mqtt or mqtt-ws") {
		t.Fatalf("GetTwin over HTTPS: %v", err)
	}
	if err := dc.OnMethod(t.Context(), func(context.Context, hub.MethodCall) hub.MethodResponse { return hub.MethodResponse{} }); !errors.Is(err, hub.ErrNeedsMQTT) {
		t.Fatalf("OnMethod over HTTPS: %v", err)
	}
}

// TestDeviceTwinReconnects: when the hub drops the connection (here a
// second connection with the device's ID takes it over), the client
// reconnects, subscribes again, delivers the desired change it missed as
// the whole desired properties, and answers methods again.
func TestDeviceTwinReconnects(t *testing.T) {
	defer hub.SetReconnectDelay(2 * time.Second)()
	em, reg, devs, opts := provisioned(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dc := deviceOver(t, em, reg.Host(), devs["dev-00"], hub.ClientOptions{ClientOptions: opts}, mqttconn.MQTT)
	watch, err := dc.WatchDesired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nextPatch(t, watch)
	if err := dc.OnMethod(ctx, func(_ context.Context, c hub.MethodCall) hub.MethodResponse {
		return hub.MethodResponse{Status: 200, Payload: json.RawMessage(`"pong"`)}
	}); err != nil {
		t.Fatal(err)
	}

	host := reg.Host()
	o := paho.NewClientOptions().AddBroker("ssl://" + em.Env().HubMQTTEndpoints[0]).SetClientID("dev-00").
		SetUsername(host + "/dev-00/?api-version=2021-04-12").
		SetPassword(keys.SignSAS(host+"/devices/dev-00", devs["dev-00"], "", time.Now().Add(time.Hour))).
		SetTLSConfig(&tls.Config{RootCAs: em.CertPool()}).SetProtocolVersion(4).SetAutoReconnect(false)
	intruder := paho.NewClient(o)
	if tok := intruder.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer intruder.Disconnect(0)
	missed, err := reg.UpdateTwin(ctx, "dev-00", hub.TwinPatch{Properties: &hub.TwinPatchProperties{Desired: dps.TwinCollection{"mode": "eco"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := nextPatch(t, watch)
	if !p.Full || p.Version != int64(missed.Properties.Desired["$version"].(float64)) || p.Properties["mode"] != "eco" {
		t.Fatalf("after the reconnection: %+v, want the whole desired properties with mode eco", p)
	}
	res, err := reg.InvokeMethod(ctx, "dev-00", "ping", nil, &hub.MethodOptions{ConnectTimeout: 10 * time.Second})
	if err != nil || res.Status != 200 || string(res.Payload) != `"pong"` {
		t.Fatalf("method after the reconnection: %+v, %v", res, err)
	}
	if v, err := dc.ReportProperties(ctx, dps.TwinCollection{"back": true}); err != nil || v == 0 {
		t.Fatalf("report after the reconnection: %d, %v", v, err)
	}
}
