package emulator

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/dpsconsole/dpsconsole/keys"
)

// TestMQTTEndpointPerHub: DPS and each hub serve MQTT/TLS on their own
// listener and MQTT over WebSockets on their HTTPS port; a hub's listener
// serves that hub's devices (its listener, not the user name, picks the hub);
// the ports stay the same across a restart.
func TestMQTTEndpointPerHub(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := startTest(t, Options{DataDir: dir, Seed: "demo"})
	env := e.Env()
	if env.MQTTEndpoint == "" || len(env.HubMQTTEndpoints) != 2 || env.HubMQTTEndpoints[0] == env.HubMQTTEndpoints[1] {
		t.Fatalf("MQTT endpoints: DPS %q, hubs %q", env.MQTTEndpoint, env.HubMQTTEndpoints)
	}
	for i := 1; i <= 2; i++ {
		id := "per-hub-dev-" + string(rune('0'+i))
		m, k := connectHubDevice(t, e, i, id)
		m.send(publishPacket("devices/"+id+"/messages/events/a=1", 1, 9, `{"n":1}`))
		if ack := m.expect(packets.Puback, 10*time.Second); ack.PacketID != 9 {
			t.Fatalf("PUBACK for packet %d, want 9", ack.PacketID)
		}
		if n := messageCount(t, e, i, id); n != 1 {
			t.Fatalf("hub %d counted %d messages, want 1", i, n)
		}

		// Over WebSockets on the hub's HTTPS port, subprotocol in the C SDK's spelling.
		ws, resp, err := dialRawWS(t, e, e.hubs[i-1].HostName, "MQTT")
		if err != nil {
			t.Fatalf("WebSocket to hub %d: %v (%v)", i, err, resp)
		}
		if got := resp.Header.Get("Sec-Websocket-Protocol"); got != "MQTT" {
			t.Errorf("negotiated subprotocol %q, want the client's MQTT", got)
		}
		user, pw := hubCredentials(e, i, id, k)
		if code := ws.connect(connectPacket(id, user, pw)); code != 0 {
			t.Fatalf("CONNECT over WebSockets to hub %d: return code %d", i, code)
		}
		ws.send(publishPacket("devices/"+id+"/messages/events/", 1, 3, `{"n":2}`))
		ws.expect(packets.Puback, 10*time.Second)
		if n := messageCount(t, e, i, id); n != 2 {
			t.Fatalf("hub %d counted %d messages after the WebSocket one, want 2", i, n)
		}

		// The other hub's listener does not know the device, whatever the user name says.
		other := dialRaw(t, e, env.HubMQTTEndpoints[2-i])
		if code := other.connect(connectPacket(id, user, pw)); code != connackNotAuthorized {
			t.Fatalf("device of hub %d on hub %d's listener: return code %d, want 5", i, 3-i, code)
		}
	}

	// DPS registration over WebSockets (paho, as an SDK would).
	scope := env.IDScope
	groupKey, _ := keys.ParseKey(TutorialGroupKey)
	const rid = "ws-dev-1"
	devKey, _ := keys.DeriveDeviceKey(groupKey, rid)
	c := mqttConnect(t, e, "wss://"+env.DeviceEndpoint+mqttWebSocketPath, rid, scope+"/registrations/"+rid+"/api-version=2019-03-31",
		keys.SignSAS(scope+"/registrations/"+rid, devKey, "registration", time.Now().Add(time.Hour)))
	topic, st, body := dpsSession(t, c)("$dps/registrations/PUT/iotdps-register/?$rid=1", `{"registrationId":"`+rid+`"}`)
	if !strings.HasPrefix(topic, "$dps/registrations/res/20") || st.OperationID == "" {
		t.Fatalf("register over WebSockets: %s %s", topic, body)
	}
	c.Disconnect(100)

	// A plain GET (or another subprotocol) on the path is told what it is.
	if _, resp, err := dialRawWS(t, e, env.DeviceEndpoint, "amqp"); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("WebSocket with subprotocol amqp: %v, %v; want 400", err, resp)
	}

	e.Close()
	again := startTest(t, Options{DataDir: dir})
	if got := again.Env(); got.MQTTEndpoint != env.MQTTEndpoint || strings.Join(got.HubMQTTEndpoints, ",") != strings.Join(env.HubMQTTEndpoints, ",") {
		t.Fatalf("after a restart the MQTT endpoints are %q %q, were %q %q", got.MQTTEndpoint, got.HubMQTTEndpoints, env.MQTTEndpoint, env.HubMQTTEndpoints)
	}
}

// TestMQTTReadmeLayout: with the README's layout (every HTTPS listener on
// 443), every endpoint serves MQTT/TLS on 8883 of its own address and
// WebSockets on 443, where the unchanged SDKs look.
func TestMQTTReadmeLayout(t *testing.T) {
	t.Parallel()
	e, err := Start(context.Background(), Options{DataDir: t.TempDir(), Seed: "demo",
		HTTPSAddr: "127.0.77.1:443", HubAddrs: []string{"127.0.77.2:443", "127.0.77.3:443"}})
	if errors.Is(err, syscall.EACCES) {
		t.Skipf("port 443 needs root here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	env := e.Env()
	if env.MQTTEndpoint != "127.0.77.1:8883" || strings.Join(env.HubMQTTEndpoints, " ") != "127.0.77.2:8883 127.0.77.3:8883" {
		t.Fatalf("MQTT endpoints %q %q, want 8883 on each listener's address", env.MQTTEndpoint, env.HubMQTTEndpoints)
	}
	for i, host := range []string{"127.0.77.2", "127.0.77.3"} {
		id := "readme-dev"
		k := hubDeviceFor(t, e, i+1, id)
		user, pw := hubCredentials(e, i+1, id, k)
		if !strings.HasPrefix(user, host+"/") {
			t.Fatalf("hub %d host name %q, want %s", i+1, user, host)
		}
		for _, broker := range []string{"ssl://" + net.JoinHostPort(host, "8883"), "wss://" + host + mqttWebSocketPath} {
			c := mqttConnect(t, e, broker, id, user, pw)
			if tok := c.Publish("devices/"+id+"/messages/events/", 1, false, "x"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("telemetry to %s: %v", broker, tok.Error())
			}
			c.Disconnect(100)
		}
		if n := messageCount(t, e, i+1, id); n != 2 {
			t.Fatalf("hub %s counted %d messages, want 2", host, n)
		}
	}
}

// TestMQTTOff: MQTTOff serves neither MQTT nor WebSockets, and says so in
// the env.
func TestMQTTOff(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{MQTTAddr: MQTTOff})
	env := e.Env()
	if env.MQTTEndpoint != "" || env.HubMQTTEndpoints != nil || strings.Contains(env.String(), "IOTHUB_MQTT_ENDPOINT") {
		t.Fatalf("MQTT off, env:\n%s", env.String())
	}
	if _, resp, err := dialRawWS(t, e, e.hubs[0].HostName, "mqtt"); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("WebSocket with MQTT off: %v, %v; want 404", err, resp)
	}
}

// TestMQTTCloseWithLiveConnections: Close ends every MQTT connection at
// once, connected or still before CONNECT, over TLS and WebSockets.
func TestMQTTCloseWithLiveConnections(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{})
	connected, _ := connectHubDevice(t, e, 1, "close-dev")
	early := dialRaw(t, e, e.Env().MQTTEndpoint)
	ws, _, err := dialRawWS(t, e, e.hubs[1].HostName, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	for _, m := range []*rawMQTT{connected, early, ws} {
		m.expectClosed(time.Second)
	}
}

// TestMQTTCloseWhileConnectionsChurn: Close returns promptly while MQTT
// connections over TLS and WebSockets are opening, idling and being closed
// by their clients all at once, as when a user stops the emulator while
// devices come and go. Each round closes a fresh emulator under that churn.
func TestMQTTCloseWhileConnectionsChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("opens hundreds of TLS connections")
	}
	for round := range 2 {
		closeUnderChurn(t, round)
		if t.Failed() {
			return
		}
	}
}

func closeUnderChurn(t *testing.T, round int) {
	e, err := Start(context.Background(), Options{DataDir: t.TempDir(), mqttMaxKeepAlive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{RootCAs: e.CertPool(), ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	addrs := []string{e.Env().MQTTEndpoint, "wss://" + e.Env().DeviceEndpoint + mqttWebSocketPath}

	var mu sync.Mutex
	var conns []net.Conn
	keep := func(c *rawMQTT) {
		mu.Lock()
		conns = append(conns, c.conn)
		mu.Unlock()
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()

	// Idle connections, half of which their clients close during Close.
	const idle = 300
	var wg sync.WaitGroup
	idlers := make([]*rawMQTT, idle)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < idle; i += 8 {
				if c, err := openIdleMQTT(addrs[i%2], conf, i); err == nil {
					idlers[i] = c
					keep(c)
				} else {
					t.Errorf("round %d: idle connection %d: %v", round, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		e.Close()
		return
	}

	// Churn: clients that connect and hang up again and again.
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for w := range 8 {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if c, err := openIdleMQTT(addrs[(w+i)%2], conf, idle+w*100000+i); err == nil {
					keep(c)
					c.conn.Close()
				}
			}
		}()
	}
	defer func() { close(stop); churn.Wait() }()
	time.Sleep(200 * time.Millisecond)

	go func() {
		for i := 0; i < idle; i += 2 {
			idlers[i].conn.Close()
		}
	}()
	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatalf("round %d: Close has not returned after 15 s:\n%s", round, stackOf("(*Emulator).Close"))
	}
}

// stackOf is the stack of every goroutine whose stack mentions fn.
func stackOf(fn string) string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// TestMQTTCloseWhileClientsLeave: Close returns when clients are leaving the
// broker's client list as it runs. The test sets up the interleaving that
// deadlocked mochi's own closing of a listener's clients
// (mochi-mqtt/server#488): a reader of the list (the test) holds it while
// clients, over TLS and over WebSockets, hang up and wait to be removed from
// it; Close starts, and then the reader lets go. Whether the broker then
// deadlocked depended on the scheduler (about 2 runs in 3), hence the
// rounds. Not parallel: it reads every goroutine's stack.
func TestMQTTCloseWhileClientsLeave(t *testing.T) {
	for round := range 3 {
		closeWhileClientsLeave(t, round)
	}
}

func closeWhileClientsLeave(t *testing.T, round int) {
	e, err := Start(context.Background(), Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{RootCAs: e.CertPool()}
	addrs := []string{e.Env().MQTTEndpoint, "wss://" + e.Env().DeviceEndpoint + mqttWebSocketPath}
	var clients []*rawMQTT
	for i := range 32 {
		c, err := openIdleMQTT(addrs[i%2], conf, i)
		if err != nil {
			e.Close()
			t.Fatal(err)
		}
		clients = append(clients, c)
	}

	e.mqtt.Clients.RLock()
	for _, c := range clients {
		c.conn.Close()
	}
	leaving := waitForStacks(func(s string) bool { return strings.Count(s, "(*Clients).Delete") >= len(clients) })
	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	closing := waitForStacks(func(string) bool { // in mochi's GetByListener before the fix, waiting for the clients after
		s := stackOf("(*mqttListener).Close")
		return strings.Contains(s, "GetByListener") || strings.Contains(s, "(*WaitGroup).Wait")
	})
	e.mqtt.Clients.RUnlock()
	if !leaving || !closing {
		t.Fatalf("round %d: setup: clients leaving %v, Close at the MQTT listeners %v", round, leaving, closing)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("round %d: Close has not returned after 10 s:\n%s", round, stackOf("(*Emulator).Close"))
	}
}

// waitForStacks waits up to 10 s for the goroutines' stacks to satisfy ok.
func waitForStacks(ok func(stacks string) bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ok(stackOf("")) {
			return true
		}
	}
	return false
}
