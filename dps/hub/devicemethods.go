package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Direct methods on the device side (dps-protocol.md §8a), as
// azure-iot-device-mqtt answers them: SUBSCRIBE QoS 0 to
// $iothub/methods/POST/#; a call arrives on
// $iothub/methods/POST/{method}/?$rid=R with its JSON payload, and the
// device answers PUBLISH QoS 0 to $iothub/methods/res/{status}/?$rid=R with
// its JSON.

const (
	methodCalls     = "$iothub/methods/POST/#"
	methodPrefix    = "$iothub/methods/POST/"
	methodResPrefix = "$iothub/methods/res/"
)

// MethodCall is one direct-method call the device received.
type MethodCall struct {
	Name      string
	RequestID string          // the hub's $rid
	Payload   json.RawMessage // the caller's JSON ("null" when none)
}

// MethodResponse is the device's answer: a status the caller sees (200 for
// success, by convention) and a JSON payload (nil sends null).
type MethodResponse struct {
	Status  int
	Payload json.RawMessage
}

// MethodHandler answers a direct method. Each call runs in its own
// goroutine; ctx ends when the client is closed.
type MethodHandler func(ctx context.Context, call MethodCall) MethodResponse

// OnMethod subscribes to direct methods and answers each with handler,
// until the client is closed; a dropped connection is reopened and
// subscribed again. A second call replaces the handler.
func (c *DeviceClient) OnMethod(ctx context.Context, handler MethodHandler) error {
	if c.link == nil {
		return ErrNeedsMQTT
	}
	if handler == nil {
		return fmt.Errorf("answer direct methods: a handler is required")
	}
	l := c.link
	l.mu.Lock()
	l.method = handler
	l.mu.Unlock()
	if _, err := l.ensure(ctx, methodCalls); err != nil {
		return fmt.Errorf("answer direct methods as %s: %w", l.s.deviceID, err)
	}
	return nil
}

// methodCalled runs the handler for $iothub/methods/POST/{name}/?$rid=R
// and publishes its answer on the connection the call came on.
func (l *deviceLink) methodCalled(conn paho.Client, topic string, payload []byte) {
	path, query, _ := strings.Cut(topic, "?")
	q, _ := url.ParseQuery(query)
	call := MethodCall{Name: strings.TrimSuffix(strings.TrimPrefix(path, methodPrefix), "/"), RequestID: q.Get("$rid"), Payload: slices.Clone(payload)}
	if call.RequestID == "" {
		return
	}
	if len(call.Payload) == 0 {
		call.Payload = json.RawMessage("null")
	}
	l.mu.Lock()
	handler := l.method
	l.mu.Unlock()
	if handler == nil {
		return
	}
	go func() {
		res := handler(linkContext{l.closed}, call)
		body := res.Payload
		switch {
		case body == nil:
			body = json.RawMessage("null")
		case !json.Valid(body):
			res.Status = 500
			body, _ = json.Marshal(map[string]string{"error": "the device's answer to " + call.Name + " was not valid JSON"})
		}
		conn.Publish(methodResPrefix+strconv.Itoa(res.Status)+"/?$rid="+call.RequestID, 0, false, []byte(body))
	}()
}

// linkContext is the context of a method handler: it ends when the client
// is closed, without a goroutine per call to watch for that.
type linkContext struct{ closed <-chan struct{} }

func (linkContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c linkContext) Done() <-chan struct{}     { return c.closed }
func (linkContext) Value(any) any               { return nil }

func (c linkContext) Err() error {
	select {
	case <-c.closed:
		return context.Canceled
	default:
		return nil
	}
}

// EchoAnswer is the canned answer of a simulated device: status 200 and
// {"method":name,"request":payload}, so the caller sees its call came
// through unchanged.
func EchoAnswer(call MethodCall) MethodResponse {
	answer, _ := json.Marshal(map[string]any{"method": call.Name, "request": call.Payload})
	return MethodResponse{Status: 200, Payload: answer}
}
