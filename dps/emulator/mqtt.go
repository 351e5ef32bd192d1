package emulator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// DPS and every linked hub are MQTT endpoints, as in Azure: each serves
// MQTT 3.1.1 over TLS on its own listener (host:8883 when its HTTPS is on
// host:443) and MQTT over WebSockets at /$iothub/websocket on its HTTPS
// listener. One mochi server serves them all; the listener a connection came
// in on says which endpoint it talks to, for routing and for auth.
//
// The broker never fans a client's publish out to other clients: DPS
// requests and telemetry are turned into the equivalent HTTPS requests to the
// same handlers (mqtt_requests.go), and answers go to the requesting client
// only. CONNECT checks and topic rules are in mqtt_auth.go.

// MQTTOff as Options.MQTTAddr serves no MQTT at all (nor WebSockets).
const MQTTOff = "off"

// mqttTLSPort is the port the SDKs dial for MQTT; they take only a host name.
const mqttTLSPort = "8883"

// maxMQTTPacket is IoT Hub's 256 KB message limit plus room for the topic
// (with its property bag) and headers. A larger packet closes the connection
// before its body is read.
const maxMQTTPacket = maxHubMessage + 8<<10

// Connection deadlines (Options can shorten them for tests).
const (
	defaultMQTTConnectTimeout = 10 * time.Second // accept to CONNECT read, TLS handshake included
	defaultMQTTMaxKeepAlive   = 30 * time.Minute // used when a client asks for 0 (none) or more
)

// mqttEndpoint is DPS (hub nil) or one linked hub as MQTT clients reach it.
type mqttEndpoint struct {
	id   string        // mochi listener id of the TLS listener: "dps", "hub1", ...
	hub  *hub          // nil for DPS
	host string        // host:port clients dial for MQTT/TLS
	tls  *mqttListener // MQTT over TLS
	ws   *mqttListener // MQTT over WebSockets, fed by the HTTPS listener
}

// listenMQTT opens the MQTT/TLS listener of DPS and of each hub. https are
// the HTTPS listeners, DPS first. An endpoint whose HTTPS is on port 443 gets
// port 8883 on the same host; elsewhere a free port, kept across restarts.
func (e *Emulator) listenMQTT(ctx context.Context, https []net.Listener) ([]*mqttEndpoint, error) {
	var eps []*mqttEndpoint
	fail := func(err error) ([]*mqttEndpoint, error) {
		for _, ep := range eps {
			ep.tls.ln.Close()
		}
		return nil, err
	}
	requested := append([]string{e.opts.HTTPSAddr}, e.opts.HubAddrs...)
	for i, httpsLn := range https {
		id, setting, addr := "dps", "mqtt_addr", mqttAddrFor(requested[i], httpsLn.Addr())
		var h *hub
		if i == 0 && e.opts.MQTTAddr != "" {
			addr = e.opts.MQTTAddr
		}
		if i > 0 {
			h = e.hubs[i-1]
			id = "hub" + strconv.Itoa(h.Index)
			setting = "mqtt_addr_" + id
		}
		persisted, err := e.store.setting(ctx, setting)
		if err != nil {
			return fail(err)
		}
		ln, err := listenReusing(addr, persisted)
		if err != nil {
			return fail(fmt.Errorf("emulator: listen for MQTT (%s) on %s: %w", id, addr, err))
		}
		host := net.JoinHostPort(hostOnly(addr, ln.Addr()), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		ep := &mqttEndpoint{id: id, hub: h, host: host}
		ep.tls = &mqttListener{id: id, ln: ln, ep: ep, e: e}
		ep.ws = &mqttListener{id: id + "-ws", ep: ep, e: e}
		eps = append(eps, ep)
		if err := e.store.setSetting(ctx, setting, ln.Addr().String()); err != nil {
			return fail(err)
		}
	}
	return eps, nil
}

// mqttAddrFor is the MQTT listen address of an endpoint whose HTTPS was
// asked for at httpsAddr and bound at bound.
func mqttAddrFor(httpsAddr string, bound net.Addr) string {
	host, _, _ := net.SplitHostPort(httpsAddr)
	if ta, ok := bound.(*net.TCPAddr); ok && ta.Port == 443 {
		return net.JoinHostPort(host, mqttTLSPort)
	}
	return net.JoinHostPort(host, "0")
}

// startMQTT serves every endpoint's listeners until Close.
func (e *Emulator) startMQTT(eps []*mqttEndpoint, conf *tls.Config) error {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxMQTTPacket
	caps.MaximumQos = 1                 // IoT Hub and DPS grant at most QoS 1
	caps.MinimumProtocolVersion = 4     // MQTT 3.1.1 only (v5 is refused in OnConnect)
	caps.MaximumClientWritesPending = 8 // the broker queues nothing for us: answers are written directly
	caps.TopicAliasMaximum = 0
	caps.SharedSubAvailable = 0
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 slog.New(minLevel{e.log.Handler(), slog.LevelWarn}),
		SysTopicResendInterval: 3600, // nobody may read $SYS
	})
	if err := srv.AddHook(&mqttHook{e: e}, nil); err != nil {
		return err
	}
	if err := srv.AddHook(&presenceHook{e: e}, nil); err != nil {
		return err
	}
	for _, ep := range eps {
		ep.tls.ln = tls.NewListener(ep.tls.ln, conf)
		for _, l := range []*mqttListener{ep.tls, ep.ws} {
			if err := srv.AddListener(l); err != nil {
				return err
			}
		}
	}
	if err := srv.Serve(); err != nil {
		return err
	}
	e.mqtt = srv
	return nil
}

// mqttListener hands mochi the connections of one endpoint: accepted from
// ln (MQTT/TLS, a listener the emulator opened for the port reuse and the
// certificate) or upgraded by ServeHTTP (WebSockets, ln nil). It tracks them
// so Close also ends those that have not sent CONNECT yet.
type mqttListener struct {
	id string
	ln net.Listener
	ep *mqttEndpoint
	e  *Emulator

	mu        sync.Mutex
	establish listeners.EstablishFn // nil until Serve, and after Close
	closed    bool
	conns     map[*mqttConn]struct{}
	wg        sync.WaitGroup
}

func (l *mqttListener) Init(*slog.Logger) error { return nil }
func (l *mqttListener) ID() string              { return l.id }

func (l *mqttListener) Address() string {
	if l.ln == nil {
		return mqttWebSocketPath
	}
	return l.ln.Addr().String()
}

func (l *mqttListener) Protocol() string {
	if l.ln == nil {
		return "wss"
	}
	return "mqtts"
}

func (l *mqttListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	l.establish = establish
	l.mu.Unlock()
	if l.ln == nil {
		return // ServeHTTP feeds the WebSocket listener
	}
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.run(c)
	}
}

// run serves one connection until it ends; false when the listener is not
// serving (not started yet, or closed).
func (l *mqttListener) run(c net.Conn) bool {
	mc := &mqttConn{Conn: c, ep: l.ep}
	c.SetDeadline(time.Now().Add(l.e.mqttConnectTimeout())) // mochi sets the keep-alive deadline after CONNECT
	l.mu.Lock()
	establish := l.establish
	if establish == nil || l.closed {
		l.mu.Unlock()
		c.Close()
		return false
	}
	if l.conns == nil {
		l.conns = map[*mqttConn]struct{}{}
	}
	l.conns[mc] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.conns, mc)
		l.mu.Unlock()
		l.wg.Done()
	}()
	establish(l.id, mc)
	return true
}

// Close stops accepting, closes every connection of the listener and waits
// until mochi is done with them. It leaves mochi's closeClients alone: that
// reads the client list holding its read lock twice (Clients.GetByListener
// calls Len), so a client disconnecting in between deadlocks the broker and
// Close with it (mochi-mqtt/server#488, unfixed in v2.7.9). Closing the
// connections here ends those clients just as well.
func (l *mqttListener) Close(listeners.CloseFn) {
	if l.ln != nil {
		l.ln.Close()
	}
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// mqttConn is a client connection with what the emulator knows about it.
// The session is written at CONNECT, before mochi reads any other packet,
// and only read after.
type mqttConn struct {
	net.Conn
	ep   *mqttEndpoint
	sess mqttSession
}

// mqttSession is what CONNECT established.
type mqttSession struct {
	password string    // the SAS, sent with each request made on the client's behalf
	deviceID string    // hub: the authenticated device
	expiry   time.Time // hub: the token's expiry; the connection ends at its next packet after it
}

// connOf is the emulator's view of a mochi client; nil for one it did not
// accept (there are none: every listener is the emulator's).
func connOf(cl *mqtt.Client) *mqttConn {
	c, _ := cl.Net.Conn.(*mqttConn)
	return c
}

func (e *Emulator) mqttConnectTimeout() time.Duration {
	if e.opts.mqttConnectTimeout > 0 {
		return e.opts.mqttConnectTimeout
	}
	return defaultMQTTConnectTimeout
}

func (e *Emulator) mqttMaxKeepAlive() time.Duration {
	if e.opts.mqttMaxKeepAlive > 0 {
		return e.opts.mqttMaxKeepAlive
	}
	return defaultMQTTMaxKeepAlive
}

var errNotEmulatorConn = errors.New("not a connection of the emulator's listeners")

// minLevel drops records below a level (mochi logs every start at info).
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}

// Handle drops the packets mochi attaches to its warnings ("pk", "packet"):
// a CONNECT carries the device's SAS token as its password. It drops mochi's
// advice on short keep-alives too: the SDKs' own choice (the C SDK sends 0),
// which the emulator caps anyway, is no warning for its operator.
func (m minLevel) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == mqtt.ErrMinimumKeepalive.Error() {
		return nil
	}
	clean := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		switch a.Value.Any().(type) {
		case packets.Packet, *packets.Packet:
		default:
			clean.AddAttrs(a)
		}
		return true
	})
	return m.Handler.Handle(ctx, clean)
}

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(as), m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{m.Handler.WithGroup(name), m.min}
}

// mqttEndpoint returns endpoint i (0 = DPS, i = hub i); nil when MQTT is off.
func (e *Emulator) mqttEndpoint(i int) *mqttEndpoint {
	if i < len(e.mqttEPs) {
		return e.mqttEPs[i]
	}
	return nil
}
