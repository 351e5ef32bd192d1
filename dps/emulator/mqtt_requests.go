package emulator

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// OnPublish handles a client's publish on the connection's own goroutine,
// so a connection has one request in progress at a time and a flood of
// publishes waits in the network buffers, not in memory. The hook writes the
// PUBACK itself, only for a publish it accepts (a DPS request before its
// answer, telemetry once it is counted), and returns ErrRejectPacket so the
// broker neither acknowledges, stores nor fans out anything: a refused
// publish is never acknowledged, not even to a later session.
func (h *mqttHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	c := connOf(cl)
	if c == nil {
		return pk, errNotEmulatorConn
	}
	ack := func() {
		if pk.FixedHeader.Qos > 0 {
			cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
		}
	}
	switch {
	case c.ep.hub == nil:
		ack()
		h.e.mqttDPS(cl, pk.TopicName, pk.Payload, c.sess.password)
	case strings.HasPrefix(pk.TopicName, "devices/"):
		if err := h.e.mqttTelemetry(c.ep.hub, pk.TopicName, pk.Payload, c.sess.password); err != nil {
			cl.Stop(err)
			return pk, packets.ErrRejectPacket
		}
		ack()
	default:
		ack()
		h.e.mqttIoTHub(cl, c, pk.TopicName, pk.Payload) // twins and methods (mqtt_twin.go)
	}
	return pk, packets.ErrRejectPacket
}

// mqttDPS answers $dps/registrations/PUT/iotdps-register/?$rid=R and
// $dps/registrations/GET/iotdps-get-operationstatus/?$rid=R&operationId=O on
// $dps/registrations/res/{status}/?$rid=R[&retry-after=N], through the same
// handler (and so the same token check) as the HTTPS device API.
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

// mqttTelemetry forwards devices/{id}/messages/events/{properties} to hub h
// (the one whose listener the client came in on) through its HTTPS handler.
// An error means the hub refused the message; IoT Hub then closes the
// connection.
func (e *Emulator) mqttTelemetry(h *hub, topic string, payload []byte, password string) error {
	rest, _ := strings.CutPrefix(topic, "devices/")
	deviceID, rest, _ := strings.Cut(rest, "/")
	props, isEvent := strings.CutPrefix(rest+"/", "messages/events/")
	if !isEvent {
		return errors.New("not an IoT hub telemetry topic: " + topic)
	}
	r, err := http.NewRequestWithContext(context.Background(), http.MethodPost,
		"/devices/"+url.PathEscape(deviceID)+"/messages/events?api-version=2021-04-12", bytes.NewReader(payload))
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", password)
	if v, err := url.ParseQuery(strings.TrimSuffix(props, "/")); err == nil {
		for k := range v {
			if !strings.HasPrefix(k, "$") {
				r.Header.Set("iothub-app-"+k, v.Get(k))
			}
		}
	}
	w := &responseBuffer{header: http.Header{}}
	serve := func(w http.ResponseWriter, r *http.Request) { e.serveHub(h, w, r) }
	if !serveRecovering(w, r, serve) || w.status() >= 300 {
		return errors.New("telemetry refused with HTTP " + strconv.Itoa(w.status()))
	}
	return nil
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
