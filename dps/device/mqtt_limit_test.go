package device_test

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/keys"
)

// standInDPS answers every register and poll publish with res/202
// retry-after=0 until the 7th poll, which gets res/200 assigned.
type standInDPS struct {
	mqtt.HookBase
	mu    sync.Mutex
	polls []time.Time
}

func (h *standInDPS) ID() string { return "stand-in-dps" }
func (h *standInDPS) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnPublish
}
func (h *standInDPS) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (h *standInDPS) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }
func (h *standInDPS) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	_, query, _ := strings.Cut(pk.TopicName, "?")
	q, _ := url.ParseQuery(query)
	h.mu.Lock()
	if strings.Contains(pk.TopicName, "/GET/iotdps-get-operationstatus/") {
		h.polls = append(h.polls, time.Now())
	}
	done := len(h.polls) >= 7
	h.mu.Unlock()
	topic, body := "$dps/registrations/res/202/?$rid="+q.Get("$rid")+"&retry-after=0", `{"operationId":"5.1.a","status":"assigning"}`
	if done {
		topic, body = "$dps/registrations/res/200/?$rid="+q.Get("$rid"), `{"operationId":"5.1.a","status":"assigned","registrationState":{"registrationId":"d","status":"assigned","assignedHub":"h"}}`
	}
	go cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: []byte(body)})
	return pk, packets.CodeSuccessIgnore
}

// TestMQTTPollRateLimit: a DPS that keeps answering "assigning" with
// retry-after=0 over MQTT still gets at most 5 polls in 10 s, as over HTTPS
// (TestPollRateLimit).
func TestMQTTPollRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 s")
	}
	t.Parallel()
	web := httptest.NewTLSServer(nil) // for its certificate and a client that trusts it
	defer web.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	hook := &standInDPS{}
	if err := srv.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewNet("tls", tls.NewListener(ln, &tls.Config{Certificates: web.TLS.Certificates}))); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := device.NewClient("0ne00000A0A", &device.ClientOptions{ProvisioningHost: "127.0.0.1", MQTTHost: ln.Addr().String(),
		Transport: device.TransportMQTT, TLSConfig: web.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	var waits int
	st, err := c.Register(t.Context(), "d", keys.GenerateKey(), &device.RegisterOptions{PollInterval: 10 * time.Millisecond,
		Progress: func(e device.Event) {
			if e.Step == device.StepPollWait {
				waits++
			}
		}})
	if err != nil || st.AssignedHub != "h" {
		t.Fatalf("%+v, %v", st, err)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for i := 5; i < len(hook.polls); i++ {
		if gap := hook.polls[i].Sub(hook.polls[i-5]); gap < 10*time.Second {
			t.Errorf("polls %d and %d are %v apart: more than 5 polls in 10 s", i-5, i, gap)
		}
	}
	if waits == 0 {
		t.Error("no poll-rate-limit step was reported")
	}
}
