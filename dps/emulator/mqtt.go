package emulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The MQTT listener serves DPS registration (dps-protocol.md §4) and hub
// telemetry over MQTT 3.1.1/TLS by turning each request publish into the
// equivalent HTTPS request to the same handlers, so both transports behave
// alike (auth, throttling, faults, assignment). Answers go to the requesting
// client only, never through the broker's fan-out.
//
// CONNECT is always accepted, as DPS does; a bad SAS is answered on the
// response topic (DPS) or by closing the connection (hub).

// startMQTT serves MQTT on ln with conf until Close.
func (e *Emulator) startMQTT(ln net.Listener, conf *tls.Config) error {
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(minLevel{e.log.Handler(), slog.LevelWarn})})
	if err := srv.AddHook(&mqttHook{e: e}, nil); err != nil {
		return err
	}
	if err := srv.AddListener(&mqttListener{ln: tls.NewListener(ln, conf)}); err != nil {
		return err
	}
	if err := srv.Serve(); err != nil {
		return err
	}
	e.mqtt = srv
	return nil
}

// mqttListener hands mochi a listener opened by the emulator (for the port
// reuse and the certificate).
type mqttListener struct {
	ln net.Listener
	wg sync.WaitGroup
}

func (l *mqttListener) Init(*slog.Logger) error { return nil }
func (l *mqttListener) ID() string              { return "mqtt" }
func (l *mqttListener) Address() string         { return l.ln.Addr().String() }
func (l *mqttListener) Protocol() string        { return "tcp" }

func (l *mqttListener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			establish(l.ID(), c)
		}()
	}
}

func (l *mqttListener) Close(closeClients listeners.CloseFn) {
	l.ln.Close()
	closeClients(l.ID())
	l.wg.Wait()
}

// mqttHook routes publishes. It keeps each connection's password (its SAS)
// for the requests it makes on the client's behalf.
type mqttHook struct {
	mqtt.HookBase
	e         *Emulator
	passwords sync.Map // *mqtt.Client -> string
}

func (h *mqttHook) ID() string { return "dpsconsole" }

func (h *mqttHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnPublish || b == mqtt.OnDisconnect
}

func (h *mqttHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	h.passwords.Store(cl, string(pk.Connect.Password))
	return true
}

func (h *mqttHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (h *mqttHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) { h.passwords.Delete(cl) }

// OnPublish answers DPS requests and counts telemetry. Client publishes are
// acknowledged but never fanned out to other clients.
func (h *mqttHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	pw, _ := h.passwords.Load(cl)
	password, _ := pw.(string)
	payload := bytes.Clone(pk.Payload)
	switch {
	case strings.HasPrefix(pk.TopicName, "$dps/registrations/"):
		go h.e.mqttDPS(cl, pk.TopicName, payload, password)
	case strings.HasPrefix(pk.TopicName, "devices/"):
		h.e.mqttTelemetry(cl, pk.TopicName, payload, password)
	}
	return pk, packets.CodeSuccessIgnore
}

// mqttDPS answers $dps/registrations/PUT/iotdps-register/?$rid=R and
// $dps/registrations/GET/iotdps-get-operationstatus/?$rid=R&operationId=O on
// $dps/registrations/res/{status}/?$rid=R[&retry-after=N].
func (e *Emulator) mqttDPS(cl *mqtt.Client, topic string, payload []byte, password string) {
	// Username: {idScope}/registrations/{registrationId}/api-version=...&ClientVersion=...
	user := strings.SplitN(string(cl.Properties.Username), "/", 4)
	_, query, _ := strings.Cut(topic, "?")
	q, _ := url.ParseQuery(query)
	rid := q.Get("$rid")
	reply := func(status int, body []byte, retryAfter string) {
		t := "$dps/registrations/res/" + strconv.Itoa(status) + "/?$rid=" + rid // $rid first: Python splits on '$'
		if retryAfter != "" {
			t += "&retry-after=" + retryAfter
		}
		cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: t, Payload: body})
	}
	if len(user) < 3 || !strings.EqualFold(user[1], "registrations") {
		reply(http.StatusUnauthorized, errorBody(codeUnauthorized, "the MQTT user name must be {idScope}/registrations/{registrationId}/api-version=..."), "")
		return
	}
	apiVersion := "2019-03-31"
	if len(user) == 4 {
		if v, err := url.ParseQuery(user[3]); err == nil && v.Get("api-version") != "" {
			apiVersion = v.Get("api-version")
		}
	}
	path := "/" + url.PathEscape(user[0]) + "/registrations/" + url.PathEscape(user[2])
	method := http.MethodPut
	switch {
	case strings.HasPrefix(topic, "$dps/registrations/PUT/iotdps-register/"):
		path += "/register"
	case strings.HasPrefix(topic, "$dps/registrations/GET/iotdps-get-operationstatus/"):
		method, path = http.MethodGet, path+"/operations/"+url.PathEscape(q.Get("operationId"))
		payload = nil // Node and Python send " "
	default:
		reply(http.StatusNotFound, errorBody(codeNotFound, "unknown DPS topic "+topic), "")
		return
	}
	r, err := http.NewRequestWithContext(context.Background(), method, path+"?api-version="+url.QueryEscape(apiVersion), bytes.NewReader(payload))
	if err != nil {
		reply(http.StatusBadRequest, errorBody(codeBadRequest, err.Error()), "")
		return
	}
	r.Header.Set("Authorization", password)
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	w := &responseBuffer{header: http.Header{}}
	if !serveRecovering(w, r, e.serveDPS) {
		cl.Stop(errors.New("injected fault: connection dropped"))
		return
	}
	reply(w.status(), w.body.Bytes(), w.header.Get("Retry-After"))
}

// mqttTelemetry forwards devices/{id}/messages/events/{properties} to the
// hub named in the user name ({hubHost}/{deviceId}/?api-version=...). A
// refused message closes the connection, as IoT Hub does.
func (e *Emulator) mqttTelemetry(cl *mqtt.Client, topic string, payload []byte, password string) {
	hubHost, _, _ := strings.Cut(string(cl.Properties.Username), "/")
	var h *hub
	for _, c := range e.hubs {
		if strings.EqualFold(c.HostName, hubHost) {
			h = c
		}
	}
	rest, ok := strings.CutPrefix(topic, "devices/")
	deviceID, rest, _ := strings.Cut(rest, "/")
	props, isEvent := strings.CutPrefix(rest, "messages/events/")
	if h == nil || !ok || !isEvent {
		cl.Stop(errors.New("not an IoT hub telemetry publish for a linked hub"))
		return
	}
	r, err := http.NewRequestWithContext(context.Background(), http.MethodPost,
		"/devices/"+url.PathEscape(deviceID)+"/messages/events?api-version=2021-04-12", bytes.NewReader(payload))
	if err != nil {
		cl.Stop(err)
		return
	}
	r.Header.Set("Authorization", password)
	if v, err := url.ParseQuery(props); err == nil {
		for k := range v {
			if !strings.HasPrefix(k, "$") {
				r.Header.Set("iothub-app-"+k, v.Get(k))
			}
		}
	}
	w := &responseBuffer{header: http.Header{}}
	serve := func(w http.ResponseWriter, r *http.Request) { e.serveHub(h, w, r) }
	if !serveRecovering(w, r, serve) || w.status() >= 300 {
		cl.Stop(errors.New("telemetry refused with HTTP " + strconv.Itoa(w.status())))
	}
}

// serveRecovering runs an HTTP handler on a synthetic request; false means
// it chose to drop the connection (an injected fault).
func serveRecovering(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			ok = false
		}
	}()
	h(w, r)
	return true
}

// responseBuffer is the http.ResponseWriter of a synthetic request.
type responseBuffer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *responseBuffer) Header() http.Header { return b.header }
func (b *responseBuffer) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}
func (b *responseBuffer) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}
func (b *responseBuffer) status() int {
	if b.code == 0 {
		return http.StatusOK
	}
	return b.code
}

func errorBody(code int32, msg string) []byte {
	w := &responseBuffer{header: http.Header{}}
	writeError(w, int(code/1000), code, msg)
	return w.body.Bytes()
}

// minLevel drops records below a level (mochi logs every start at info).
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}

// Handle drops the packets mochi attaches to its warnings ("pk", "packet"):
// a CONNECT carries the device's SAS token as its password.
func (m minLevel) Handle(ctx context.Context, r slog.Record) error {
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
