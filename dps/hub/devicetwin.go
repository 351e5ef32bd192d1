package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
)

// The device side of twins over the device's MQTT connection to its hub
// (dps-protocol.md §8a), as azure-iot-device-mqtt does it: SUBSCRIBE QoS 0
// to the response and desired topics before the first use, PUBLISH QoS 0
// to $iothub/twin/GET/?$rid=R (a body of one space, as Node sends) or
// $iothub/twin/PATCH/properties/reported/?$rid=R (the JSON patch), and wait
// for $iothub/twin/res/{status}/?$rid=R[&$version=N].

// Topic filters and request topics of the device twin.
const (
	twinResponses     = "$iothub/twin/res/#"
	desiredPatches    = "$iothub/twin/PATCH/properties/desired/#"
	twinResPrefix     = "$iothub/twin/res/"
	desiredPrefix     = "$iothub/twin/PATCH/properties/desired/"
	twinGetTopic      = "$iothub/twin/GET/"
	twinReportedTopic = "$iothub/twin/PATCH/properties/reported/"
)

// Reconnection backoff of a device that watches its twin or answers methods.
var reconnectFirst = 100 * time.Millisecond

const reconnectMax = 30 * time.Second

// ErrNeedsMQTT is what twin and method calls of a device client over HTTPS
// return: IoT Hub's HTTPS device API has no twin and no method channel.
var ErrNeedsMQTT = errors.New("device twins and direct methods need MQTT to the hub (IoT Hub's HTTPS device API has neither): use transport mqtt or mqtt-ws")

// DeviceTwin is the twin as its device reads it: the desired and reported
// properties, each with its "$version".
type DeviceTwin struct {
	Desired  dps.TwinCollection `json:"desired"`
	Reported dps.TwinCollection `json:"reported"`
}

// DesiredVersion is the $version of the desired properties.
func (t DeviceTwin) DesiredVersion() int64 { return versionOf(t.Desired) }

// ReportedVersion is the $version of the reported properties.
func (t DeviceTwin) ReportedVersion() int64 { return versionOf(t.Reported) }

// DesiredPatch is a change of the desired properties, as the hub sent it
// (a nil value removes that property), without its "$version".
type DesiredPatch struct {
	Version    int64
	Properties dps.TwinCollection
	// Full marks the whole desired properties instead of a change: the
	// first delivery of a watch, and after a reconnection that missed
	// changes.
	Full bool
}

// TwinError is a twin request the hub refused: its status and message.
type TwinError struct {
	Op      string // "get the twin", "report properties"
	Status  int
	Code    int // IoT Hub error code from the body, 0 when none
	Message string
}

func (e *TwinError) Error() string {
	msg := fmt.Sprintf("%s: the hub answered %d", e.Op, e.Status)
	if e.Code != 0 {
		msg += fmt.Sprintf(" (error %d)", e.Code)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Status == 429 {
		msg += " (throttled: slow down and try again)"
	}
	return msg
}

// GetTwin reads the device's twin over MQTT.
func (c *DeviceClient) GetTwin(ctx context.Context) (DeviceTwin, error) {
	if c.link == nil {
		return DeviceTwin{}, ErrNeedsMQTT
	}
	return c.link.getTwin(ctx)
}

// ReportProperties merges patch into the device's reported properties (a
// nil value removes that property) and returns their new $version.
func (c *DeviceClient) ReportProperties(ctx context.Context, patch dps.TwinCollection) (int64, error) {
	if c.link == nil {
		return 0, ErrNeedsMQTT
	}
	if patch == nil {
		return 0, errors.New("report properties: the patch must be a JSON object, not null")
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return 0, fmt.Errorf("report properties: %w", err)
	}
	res, err := c.link.request(ctx, "report properties", twinReportedTopic, body)
	if err != nil {
		return 0, err
	}
	return res.version, nil
}

// WatchDesired delivers the desired properties on the returned channel:
// first all of them (Full), then each change in $version order. After a
// dropped connection the client reconnects, subscribes again and, when it
// missed changes, delivers the whole desired properties again (Full). The
// channel closes when ctx ends or the client is closed.
func (c *DeviceClient) WatchDesired(ctx context.Context) (<-chan DesiredPatch, error) {
	if c.link == nil {
		return nil, ErrNeedsMQTT
	}
	return c.link.watchDesired(ctx)
}

// deviceLink is the twin and method side of a device's MQTT connection:
// the subscriptions every connection needs, the requests awaiting their
// answer, the desired watchers and the method handler.
type deviceLink struct {
	s      *mqttSender
	closed chan struct{}
	once   sync.Once

	mu          sync.Mutex
	wanted      []string               // topic filters every new connection subscribes
	subscribed  map[string]paho.Client // filter → the connection it is subscribed on
	pending     map[string]chan twinResult
	rid         uint64
	connects    int
	lastDesired int64
	watchers    []*desiredWatcher
	method      MethodHandler
	redialing   bool
}

type twinResult struct {
	status  int
	version int64
	body    []byte
	err     error
}

func newDeviceLink(s *mqttSender) *deviceLink {
	l := &deviceLink{s: s, closed: make(chan struct{}), subscribed: map[string]paho.Client{}, pending: map[string]chan twinResult{}}
	s.onConnect, s.onLost = l.connected, l.lost
	return l
}

func (l *deviceLink) close() { l.once.Do(func() { close(l.closed) }) }

// connected subscribes a new connection to what the device uses; after a
// reconnection a watched twin is read again for the changes it missed.
func (l *deviceLink) connected(conn paho.Client) error {
	l.mu.Lock()
	filters := slices.Clone(l.wanted)
	l.connects++
	catchUp := l.connects > 1 && len(l.watchers) > 0
	l.mu.Unlock()
	if len(filters) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
		if err := l.subscribe(ctx, conn, filters...); err != nil {
			return err
		}
	}
	if catchUp {
		go l.catchUp()
	}
	return nil
}

// lost fails the requests in flight (their answers went with the
// connection) and, for a device that listens, starts reconnecting.
func (l *deviceLink) lost(err error) {
	l.mu.Lock()
	for rid, ch := range l.pending {
		ch <- twinResult{err: fmt.Errorf("the connection to the hub dropped before the answer: %w", err)}
		delete(l.pending, rid)
	}
	listens := len(l.watchers) > 0 || l.method != nil
	redial := listens && !l.redialing
	if redial {
		l.redialing = true
	}
	l.mu.Unlock()
	if redial {
		go l.redial()
	}
}

// redial reconnects with a growing backoff until it is connected or the
// client is closed.
func (l *deviceLink) redial() {
	defer func() {
		l.mu.Lock()
		l.redialing = false
		l.mu.Unlock()
	}()
	wait := reconnectFirst
	for {
		select {
		case <-l.closed:
			return
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		_, _, err := l.s.connection(ctx)
		cancel()
		if err == nil {
			select {
			case <-l.closed: // closed while connecting
				l.s.close()
			default:
			}
			return
		}
		wait = min(2*wait, reconnectMax)
	}
}

// ensure returns the open connection, subscribed to filter.
func (l *deviceLink) ensure(ctx context.Context, filter string) (paho.Client, error) {
	select {
	case <-l.closed:
		return nil, errors.New("the device client is closed")
	default:
	}
	l.mu.Lock()
	if !slices.Contains(l.wanted, filter) {
		l.wanted = append(l.wanted, filter)
	}
	l.mu.Unlock()
	conn, _, err := l.s.connection(ctx) // a new connection subscribes to everything wanted
	if err != nil {
		return nil, fmt.Errorf("connect as %s to %s: %w", l.s.deviceID, l.s.hub, err)
	}
	l.mu.Lock()
	done := l.subscribed[filter] == conn
	l.mu.Unlock()
	if done {
		return conn, nil
	}
	return conn, l.subscribe(ctx, conn, filter)
}

// subscribe subscribes conn to filters at QoS 0, as the SDKs do, and
// checks the hub granted each.
func (l *deviceLink) subscribe(ctx context.Context, conn paho.Client, filters ...string) error {
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = 0
	}
	tok := conn.SubscribeMultiple(m, l.route)
	if err := mqttconn.Wait(ctx, tok); err != nil {
		return fmt.Errorf("subscribe to %s on %s: %w", strings.Join(filters, ", "), l.s.hub, err)
	}
	for f, qos := range tok.(*paho.SubscribeToken).Result() {
		if qos > 1 {
			return fmt.Errorf("%s refused the subscription to %s (SUBACK 0x%02x)", l.s.hub, f, qos)
		}
	}
	l.mu.Lock()
	for _, f := range filters {
		l.subscribed[f] = conn
	}
	l.mu.Unlock()
	return nil
}

// route hands each message to its reader. It runs on paho's router, one
// message at a time, and must not block.
func (l *deviceLink) route(conn paho.Client, m paho.Message) {
	switch t := m.Topic(); {
	case strings.HasPrefix(t, twinResPrefix):
		l.twinAnswered(t, m.Payload())
	case strings.HasPrefix(t, desiredPrefix):
		l.desiredChanged(t, m.Payload())
	case strings.HasPrefix(t, methodPrefix):
		l.methodCalled(conn, t, m.Payload())
	}
}

// request publishes a twin request and waits for its answer.
func (l *deviceLink) request(ctx context.Context, op, topic string, body []byte) (twinResult, error) {
	conn, err := l.ensure(ctx, twinResponses)
	if err != nil {
		return twinResult{}, fmt.Errorf("%s: %w", op, err)
	}
	l.mu.Lock()
	l.rid++
	rid := strconv.FormatUint(l.rid, 10)
	answer := make(chan twinResult, 1)
	l.pending[rid] = answer
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.pending, rid)
		l.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := mqttconn.Wait(ctx, conn.Publish(topic+"?$rid="+rid, 0, false, body)); err != nil {
		return twinResult{}, fmt.Errorf("%s as %s: %w", op, l.s.deviceID, err)
	}
	var res twinResult
	select {
	case res = <-answer:
	case <-ctx.Done():
		return twinResult{}, fmt.Errorf("%s as %s: no answer from %s: %w", op, l.s.deviceID, l.s.hub, ctx.Err())
	}
	if res.err != nil {
		return res, fmt.Errorf("%s as %s: %w", op, l.s.deviceID, res.err)
	}
	if res.status < 200 || res.status > 299 {
		return res, twinError(op, res)
	}
	return res, nil
}

func twinError(op string, res twinResult) error {
	e := &TwinError{Op: op, Status: res.status}
	var b struct {
		ErrorCode int    `json:"errorCode"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(res.body, &b) == nil {
		e.Code, e.Message = b.ErrorCode, b.Message
	}
	return e
}

// twinAnswered hands $iothub/twin/res/{status}/?$rid=R&$version=N to the
// request waiting for R; an answer nobody waits for is dropped.
func (l *deviceLink) twinAnswered(topic string, body []byte) {
	path, query, _ := strings.Cut(topic, "?")
	q, _ := url.ParseQuery(query)
	status, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(path, twinResPrefix), "/"))
	if err != nil {
		return
	}
	version, _ := strconv.ParseInt(q.Get("$version"), 10, 64)
	l.mu.Lock()
	answer := l.pending[q.Get("$rid")]
	delete(l.pending, q.Get("$rid"))
	l.mu.Unlock()
	if answer != nil {
		answer <- twinResult{status: status, version: version, body: slices.Clone(body)}
	}
}

func (l *deviceLink) getTwin(ctx context.Context) (DeviceTwin, error) {
	const op = "get the twin"
	res, err := l.request(ctx, op, twinGetTopic, []byte(" ")) // Node sends one space
	if err != nil {
		return DeviceTwin{}, err
	}
	var t DeviceTwin
	if err := json.Unmarshal(res.body, &t); err != nil {
		return DeviceTwin{}, fmt.Errorf("%s: the hub's answer is not a twin: %w", op, err)
	}
	return t, nil
}

// desiredChanged delivers a desired patch to every watcher, once: a
// $version not above the last one delivered is a repeat.
func (l *deviceLink) desiredChanged(topic string, body []byte) {
	var props dps.TwinCollection
	if json.Unmarshal(body, &props) != nil || props == nil {
		return
	}
	v := versionOf(props)
	if v == 0 {
		_, query, _ := strings.Cut(topic, "?")
		q, _ := url.ParseQuery(query)
		v, _ = strconv.ParseInt(q.Get("$version"), 10, 64)
	}
	delete(props, "$version")
	l.deliver(DesiredPatch{Version: v, Properties: props}, nil)
}

// deliver hands p to the watchers (or only to w) unless they already have
// that version.
func (l *deviceLink) deliver(p DesiredPatch, only *desiredWatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if only != nil {
		only.push(p)
		l.lastDesired = max(l.lastDesired, p.Version)
		return
	}
	if p.Version <= l.lastDesired {
		return
	}
	l.lastDesired = p.Version
	for _, w := range l.watchers {
		w.push(p)
	}
}

func (l *deviceLink) watchDesired(ctx context.Context) (<-chan DesiredPatch, error) {
	w := &desiredWatcher{wake: make(chan struct{}, 1), out: make(chan DesiredPatch)}
	l.mu.Lock()
	l.watchers = append(l.watchers, w)
	l.mu.Unlock()
	t, err := l.subscribedTwin(ctx)
	if err != nil {
		l.unwatch(w)
		return nil, fmt.Errorf("watch the desired properties: %w", err)
	}
	l.deliver(fullDesired(t), w)
	go func() {
		w.pump(ctx, l.closed)
		l.unwatch(w)
	}()
	return w.out, nil
}

// subscribedTwin subscribes to desired patches, then reads the twin, so no
// change falls between the two.
func (l *deviceLink) subscribedTwin(ctx context.Context) (DeviceTwin, error) {
	if _, err := l.ensure(ctx, desiredPatches); err != nil {
		return DeviceTwin{}, err
	}
	return l.getTwin(ctx)
}

// catchUp reads the twin after a reconnection and delivers the desired
// properties when they changed while the device was away.
func (l *deviceLink) catchUp() {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if t, err := l.subscribedTwin(ctx); err == nil {
		l.deliver(fullDesired(t), nil)
	}
}

func fullDesired(t DeviceTwin) DesiredPatch {
	props := make(dps.TwinCollection, len(t.Desired))
	for k, v := range t.Desired {
		if k != "$version" {
			props[k] = v
		}
	}
	return DesiredPatch{Version: t.DesiredVersion(), Properties: props, Full: true}
}

func (l *deviceLink) unwatch(w *desiredWatcher) {
	l.mu.Lock()
	l.watchers = slices.DeleteFunc(l.watchers, func(x *desiredWatcher) bool { return x == w })
	l.mu.Unlock()
}

// desiredWatcher queues patches for one reader, so a slow reader never
// blocks the connection and still gets every patch in order.
type desiredWatcher struct {
	mu    sync.Mutex
	queue []DesiredPatch
	wake  chan struct{}
	out   chan DesiredPatch
}

func (w *desiredWatcher) push(p DesiredPatch) {
	w.mu.Lock()
	w.queue = append(w.queue, p)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *desiredWatcher) pump(ctx context.Context, closed <-chan struct{}) {
	defer close(w.out)
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.mu.Unlock()
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return
			case <-closed:
				return
			}
		}
		p := w.queue[0]
		w.queue = w.queue[1:]
		w.mu.Unlock()
		select {
		case w.out <- p:
		case <-ctx.Done():
			return
		case <-closed:
			return
		}
	}
}

func versionOf(c dps.TwinCollection) int64 {
	switch v := c["$version"].(type) {
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return 0
}
