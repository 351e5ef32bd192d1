package fleet_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/fleet"
	"github.com/dpsconsole/dpsconsole/keys"
)

// connCounter is a TCP relay in front of an emulator listener: it counts
// the connections devices open through it, and those still open.
type connCounter struct {
	addr           string
	accepted, live atomic.Int64
}

func relay(t testing.TB, target string) *connCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &connCounter{addr: ln.Addr().String()}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			c.live.Add(1)
			go func() {
				defer c.live.Add(-1)
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(out, in); done <- struct{}{} }()
				go func() { io.Copy(in, out); done <- struct{}{} }()
				<-done // either side hanging up ends the connection
			}()
		}
	}()
	return c
}

// closed waits a little for every relayed connection to be closed.
func (c *connCounter) closed(t *testing.T) {
	t.Helper()
	for range 200 {
		if c.live.Load() == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d device MQTT connections left open after the run", c.live.Load())
}

// mqttConfig is f.config over transport tr, every device's DPS connection
// through a relay that counts them; hub MQTT goes to each hub's endpoint.
func (f *fixture) mqttConfig(t testing.TB, n int, tr string) (fleet.Config, *connCounter) {
	t.Helper()
	cfg := f.config(t, n)
	env := f.em.Env()
	spec, err := fleet.NewSpec(f.svc.Host(), env.IDScope, groupID, "dev", 1, n, tr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Spec = spec
	hubs := map[string]string{}
	for i, cs := range env.HubConnectionStrings {
		c, err := keys.ParseConnectionString(cs)
		if err != nil {
			t.Fatal(err)
		}
		hubs[strings.ToLower(c.HostName)] = env.HubMQTTEndpoints[i]
	}
	cfg.HubMQTTHost = func(h string) string { return hubs[strings.ToLower(h)] }
	cfg.TLSConfig = f.base.Transport.(*http.Transport).TLSClientConfig
	var counter *connCounter
	if tr == string(device.TransportMQTTWS) {
		counter = relay(t, env.DeviceEndpoint) // WebSockets ride the HTTPS port
		cfg.ProvisioningHost = counter.addr
	} else {
		counter = relay(t, env.MQTTEndpoint)
		cfg.MQTTHost = counter.addr
	}
	return cfg, counter
}

// TestFleetOverMQTT: every device registers on its own MQTT connection (one
// CONNECT, closed when it is done), is assigned across the hubs, and sends
// its telemetry over the same transport.
func TestFleetOverMQTT(t *testing.T) {
	for _, tr := range []string{"mqtt", "mqtt-ws"} {
		t.Run(tr, func(t *testing.T) {
			const n = 30
			f := start(t, emulator.Options{})
			cfg, conns := f.mqttConfig(t, n, tr)
			cfg.Telemetry, cfg.Interval = 2, 10*time.Millisecond
			var mu sync.Mutex
			connects := map[string]int{}
			cfg.OnEvent = func(id string, ev device.Event) {
				if ev.Step == device.StepConnecting {
					mu.Lock()
					connects[id]++
					mu.Unlock()
				}
			}
			sum, err := fleet.Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Assigned != n || sum.Finished != n || sum.Failed != 0 || sum.TelemetrySent != 2*n || sum.TelemetryFailed != 0 {
				t.Fatalf("summary %+v", sum)
			}
			if got := conns.accepted.Load(); got != n || len(connects) != n {
				t.Errorf("%d connections to DPS, %d devices connecting, for %d devices: want one each", got, len(connects), n)
			}
			for id, c := range connects {
				if c != 1 {
					t.Errorf("%s sent %d CONNECTs", id, c)
				}
			}
			if f.clients.Load() != 0 {
				t.Errorf("%d HTTP clients made for an %s fleet", f.clients.Load(), tr)
			}
			recs := f.records(t)
			perHub := map[string]int{}
			for i := 1; i <= n; i++ {
				r, ok := recs["dev-"+itoa(i)]
				if !ok || r.Status != dps.StatusAssigned || r.Substatus != dps.SubstatusInitialAssignment {
					t.Fatalf("dev-%d: %+v", i, r)
				}
				perHub[r.AssignedHub]++
				d, err := f.em.HubDevice(t.Context(), r.AssignedHub, r.DeviceID)
				if err != nil || d.MessageCount != 2 {
					t.Errorf("dev-%d on its hub: %+v, %v", i, d, err)
				}
			}
			if len(perHub) < 2 {
				t.Errorf("every device went to one hub: %v", perHub)
			}
			for _, h := range sum.ByHub {
				if perHub[h.Hub] != h.Count {
					t.Errorf("hub %s: summary %d, emulator %d", h.Hub, h.Count, perHub[h.Hub])
				}
			}
			if len(sum.ByHub) != len(perHub) {
				t.Errorf("summary hubs %+v, emulator %v", sum.ByHub, perHub)
			}
			if sum.Latency.P50 <= 0 || sum.Latency.Max < sum.Latency.P50 {
				t.Errorf("latency %+v", sum.Latency)
			}
			conns.closed(t)
		})
	}
}

// TestFleetOverMQTTWrongKey: a refused register is grouped by what MQTT
// said (res/401 on the response topic), not by an HTTP status it never had.
func TestFleetOverMQTTWrongKey(t *testing.T) {
	f := start(t, emulator.Options{})
	cfg, conns := f.mqttConfig(t, 4, "mqtt")
	cfg.GroupKey = keys.GenerateKey()
	sum, err := fleet.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 4 || len(sum.Failures) != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if e := sum.Failures[0].Error; !strings.HasPrefix(e, "res/401 401002") || !strings.Contains(e, "derive the device key") {
		t.Errorf("failure grouped as %q", e)
	}
	if n := len(f.records(t)); n != 0 {
		t.Errorf("%d records", n)
	}
	conns.closed(t)
}

// TestFleetOverMQTTChecksTheServer: an MQTT device refuses a server no
// trusted root vouches for, as an HTTPS one does (the fleet checks the
// certificate itself, its chain once for the fleet).
func TestFleetOverMQTTChecksTheServer(t *testing.T) {
	f := start(t, emulator.Options{})
	for _, tr := range []string{"mqtt", "mqtt-ws"} {
		cfg, _ := f.mqttConfig(t, 2, tr)
		cfg.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool()}
		cfg.Retry = policy.RetryOptions{MaxRetries: -1}
		sum, err := fleet.Run(t.Context(), cfg)
		if err != nil || sum.Assigned != 0 || sum.Failed != 2 || len(sum.Failures) != 1 || !strings.Contains(sum.Failures[0].Error, "certificate") {
			t.Errorf("%s with an untrusted server: %+v, %v", tr, sum, err)
		}
	}
}
