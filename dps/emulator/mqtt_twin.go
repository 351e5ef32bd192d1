package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The device side of twins and direct methods over a hub device's MQTT
// connection (dps-protocol.md §8a): twin GET, reported-property patches,
// desired-property notifications, method requests and their answers.

// MQTT topics of the device twin and direct methods.
const (
	topicTwinGet         = "$iothub/twin/GET/"
	topicTwinReported    = "$iothub/twin/PATCH/properties/reported/"
	topicTwinRes         = "$iothub/twin/res/"
	topicDesiredPatch    = "$iothub/twin/PATCH/properties/desired/"
	topicMethodsPOST     = "$iothub/methods/POST/"
	topicMethodsRes      = "$iothub/methods/res/"
	methodPollConnection = 50 * time.Millisecond // how often a call with a connect timeout looks for the device
)

// hubSessions is what the hubs know about connected devices: when each
// connection state last changed, and the method calls awaiting an answer.
type hubSessions struct {
	mu      sync.Mutex
	changed map[string]time.Time // by sessionKey
	calls   map[callKey]chan methodAnswer
	seq     uint64
	writing sync.Map // sessionKey → *sync.Mutex: one service twin write (and its notification) at a time
}

// twinWriteLock serialises the service's twin writes to one device, so its
// desired notifications leave in $version order.
func (s *hubSessions) twinWriteLock(h *hub, deviceID string) *sync.Mutex {
	m, _ := s.writing.LoadOrStore(sessionKey(h, deviceID), new(sync.Mutex))
	return m.(*sync.Mutex)
}

// callKey is a method call awaiting its device's answer: the $rid alone
// would let another device answer it.
type callKey struct {
	hub      int
	deviceID string
	rid      uint64
}

type methodAnswer struct {
	status  int
	payload json.RawMessage
}

func sessionKey(h *hub, deviceID string) string { return strconv.Itoa(h.Index) + "/" + deviceID }

// deviceClient is deviceID's open MQTT connection to h, nil when none.
func (e *Emulator) deviceClient(h *hub, deviceID string) *mqtt.Client {
	ep := e.mqttEndpoint(h.Index)
	if e.mqtt == nil || ep == nil {
		return nil
	}
	cl, ok := e.mqtt.Clients.Get(ep.id + "/" + deviceID)
	if !ok || cl.Closed() {
		return nil
	}
	return cl
}

// subscribedTo says whether cl has a subscription that covers topic. The
// SDKs subscribe to topic+"#", found without copying the client's
// subscriptions (GetAll does, on every method call and notification).
func subscribedTo(cl *mqtt.Client, topic string) bool {
	if _, ok := cl.State.Subscriptions.Get(topic + "#"); ok {
		return true
	}
	for filter := range cl.State.Subscriptions.GetAll() {
		if filter == topic || strings.HasSuffix(filter, "#") && strings.HasPrefix(topic, strings.TrimSuffix(filter, "#")) {
			return true
		}
	}
	return false
}

// withPresence fills in d's connection state.
func (e *Emulator) withPresence(h *hub, d *hubDevice) {
	d.Connected = e.deviceClient(h, d.DeviceID) != nil
	e.devices.mu.Lock()
	d.ConnectionChanged = e.devices.changed[sessionKey(h, d.DeviceID)]
	e.devices.mu.Unlock()
}

func connectionState(d hubDevice) string {
	if d.Connected {
		return "Connected"
	}
	return "Disconnected"
}

// presenceHook records hub devices connecting (which is activity) and
// leaving.
type presenceHook struct {
	mqtt.HookBase
	e *Emulator
}

func (p *presenceHook) ID() string { return "dpsconsole-presence" }

func (p *presenceHook) Provides(b byte) bool {
	return b == mqtt.OnSessionEstablish || b == mqtt.OnDisconnect
}

// OnSessionEstablish runs before the CONNACK, so a device that is told it
// is connected already shows as active.
func (p *presenceHook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	if c := connOf(cl); c != nil && c.ep.hub != nil {
		p.mark(c)
		if err := p.e.store.touchHubDevice(context.Background(), c.ep.hub.Index, c.sess.deviceID); err != nil && !errors.Is(err, errNotFound) {
			p.e.log.Warn("record a device's connection", "hub", c.ep.hub.HostName, "err", err)
		}
	}
}

func (p *presenceHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	// A connection taken over by a newer one of the same device changes nothing.
	if c := connOf(cl); c != nil && c.ep.hub != nil && c.sess.deviceID != "" && p.e.deviceClient(c.ep.hub, c.sess.deviceID) == nil {
		p.mark(c)
	}
}

func (p *presenceHook) mark(c *mqttConn) {
	s := &p.e.devices
	s.mu.Lock()
	if s.changed == nil {
		s.changed = map[string]time.Time{}
	}
	s.changed[sessionKey(c.ep.hub, c.sess.deviceID)] = time.Now().UTC()
	s.mu.Unlock()
}

// mqttIoTHub serves a hub device's publish on a $iothub topic.
func (e *Emulator) mqttIoTHub(cl *mqtt.Client, c *mqttConn, topic string, payload []byte) {
	path, query, _ := strings.Cut(topic, "?")
	q, _ := url.ParseQuery(query)
	rid := q.Get("$rid")
	h, deviceID := c.ep.hub, c.sess.deviceID
	switch {
	case path == topicTwinGet:
		d, err := e.store.hubDevice(context.Background(), h.Index, deviceID)
		if err != nil {
			e.twinReply(cl, rid, err, 0, nil)
			return
		}
		b, _ := json.Marshal(wireTwin(d).Properties)
		e.twinReply(cl, rid, nil, http.StatusOK, b)
	case path == topicTwinReported:
		e.mqttReported(cl, h, deviceID, rid, payload)
	case strings.HasPrefix(path, topicMethodsRes):
		status, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(path, topicMethodsRes), "/"))
		if err == nil {
			e.methodAnswered(h, deviceID, rid, status, payload)
		}
	default:
		e.twinReply(cl, rid, twinArgument("%s is not a twin operation of IoT Hub", topic), 0, nil)
	}
}

// mqttReported merges a reported-properties patch (a null removes a
// property) and answers 204 with the new reported $version.
func (e *Emulator) mqttReported(cl *mqtt.Client, h *hub, deviceID, rid string, payload []byte) {
	patch, err := twinObject("the reported properties patch", payload, true)
	if err == nil && patch == nil {
		err = twinArgument("the reported properties patch must be a JSON object")
	}
	if err != nil {
		e.twinReply(cl, rid, err, 0, nil)
		return
	}
	d, err := e.store.updateHubTwin(context.Background(), h.Index, deviceID, "", func(t *twinDoc) error {
		mergeTwin(t.Reported, patch)
		return nil
	})
	if err != nil {
		e.twinReply(cl, rid, err, 0, nil)
		return
	}
	e.twinReply(cl, rid, nil, http.StatusNoContent, nil, "&$version="+strconv.FormatInt(d.ReportedVersion, 10))
}

// twinReply answers on $iothub/twin/res/{status}/?$rid=R[extra]: status and
// body, or for err the hub's status and error body (Node reports a body
// with an errorCode as the error).
func (e *Emulator) twinReply(cl *mqtt.Client, rid string, err error, status int, body []byte, extra ...string) {
	if err != nil {
		var arg *twinArgumentError
		code := codeInternal
		switch {
		case errors.As(err, &arg):
			code = codeBadRequest
		case errors.Is(err, errNotFound):
			code = 404001
		default:
			e.log.Error("device twin over MQTT", "err", err)
		}
		status, body = int(code/1000), errorBody(code, err.Error())
	}
	topic := topicTwinRes + strconv.Itoa(status) + "/?$rid=" + rid + strings.Join(extra, "")
	cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: body})
}

// notifyDesired sends a desired-properties change to the device, if it is
// connected and subscribed: $iothub/twin/PATCH/properties/desired/?$version=N
// with the change and its $version.
func (e *Emulator) notifyDesired(h *hub, d hubDevice, change map[string]any) {
	cl := e.deviceClient(h, d.DeviceID)
	if cl == nil || !subscribedTo(cl, topicDesiredPatch) {
		return
	}
	body := make(map[string]any, len(change)+1)
	for k, v := range change {
		body[k] = v
	}
	body["$version"] = d.DesiredVersion
	b, err := json.Marshal(body)
	if err != nil {
		return
	}
	topic := topicDesiredPatch + "?$version=" + strconv.FormatInt(d.DesiredVersion, 10)
	cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: b})
}

// methodReady is deviceID's connection to h if it is subscribed to method
// calls, else nil.
func (e *Emulator) methodReady(h *hub, deviceID string) *mqtt.Client {
	if cl := e.deviceClient(h, deviceID); cl != nil && subscribedTo(cl, topicMethodsPOST) {
		return cl
	}
	return nil
}

// methodClient waits up to connect for deviceID to be connected to h and
// subscribed to method calls; nil if it is not by then.
func (e *Emulator) methodClient(ctx context.Context, h *hub, deviceID string, connect time.Duration) *mqtt.Client {
	deadline := time.Now().Add(connect)
	for {
		if cl := e.methodReady(h, deviceID); cl != nil {
			return cl
		}
		if !time.Now().Before(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(methodPollConnection):
		}
	}
}

// callMethod sends a method call to the device and waits up to timeout for
// its answer; ok is false when none came.
func (e *Emulator) callMethod(ctx context.Context, cl *mqtt.Client, h *hub, deviceID string, call methodCall, timeout time.Duration) (ans methodAnswer, ok bool) {
	s := &e.devices
	s.mu.Lock()
	if s.calls == nil {
		s.calls = map[callKey]chan methodAnswer{}
	}
	s.seq++
	key := callKey{h.Index, deviceID, s.seq}
	answer := make(chan methodAnswer, 1)
	s.calls[key] = answer
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.calls, key)
		s.mu.Unlock()
	}()
	payload := []byte(call.Payload)
	if len(payload) == 0 {
		payload = []byte("null")
	}
	topic := topicMethodsPOST + call.MethodName + "/?$rid=" + strconv.FormatUint(key.rid, 16)
	if err := cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: payload}); err != nil {
		return ans, false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ans = <-answer:
		return ans, true
	case <-t.C:
	case <-ctx.Done():
	}
	return ans, false
}

// methodAnswered hands a device's answer to the call waiting for it; an
// answer nobody waits for (late, or another $rid) is dropped, as IoT Hub
// does. A payload that is not JSON is passed on as a JSON string.
func (e *Emulator) methodAnswered(h *hub, deviceID, rid string, status int, payload []byte) {
	n, err := strconv.ParseUint(rid, 16, 64)
	if err != nil {
		return // not a $rid the hub gave out
	}
	p := json.RawMessage(payload)
	switch {
	case len(bytes.TrimSpace(payload)) == 0:
		p = json.RawMessage("null")
	case !json.Valid(payload):
		p, _ = json.Marshal(string(payload))
	}
	s := &e.devices
	s.mu.Lock()
	answer := s.calls[callKey{h.Index, deviceID, n}]
	s.mu.Unlock()
	if answer != nil {
		select {
		case answer <- methodAnswer{status, p}:
		default: // answered twice: the first answer counts
		}
	}
}

// disconnectDevice ends deviceID's MQTT connection to h, as IoT Hub does
// when the identity is deleted.
func (e *Emulator) disconnectDevice(h *hub, deviceID string) {
	if cl := e.deviceClient(h, deviceID); cl != nil {
		cl.Stop(errors.New("the device identity was deleted"))
	}
}

// disconnectRemoved ends the MQTT connection of the identity a registration
// removed from the hub the device left.
func (e *Emulator) disconnectRemoved(a assignment) {
	if a.removeHub == 0 || a.device != nil && a.removeHub == a.device.Hub && a.removeID == a.device.DeviceID {
		return
	}
	for _, h := range e.hubs {
		if h.Index == a.removeHub {
			e.disconnectDevice(h, a.removeID)
		}
	}
}
