package emulator

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	hubapi "github.com/dpsconsole/dpsconsole/dps/hub"
)

// subscribeAll subscribes a device to its twin answers, desired updates and
// method calls, as the SDKs do.
func subscribeAll(t *testing.T, m *rawMQTT) {
	t.Helper()
	m.send(subscribePacket(1, "$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#"))
	if got := m.expect(packets.Suback, 10*time.Second).ReasonCodes; len(got) != 3 || got[0] > 1 || got[1] > 1 || got[2] > 1 {
		t.Fatalf("SUBACK %v", got)
	}
}

// publishFromDevice sends a QoS 0 publish (what Node sends for twins).
func publishFromDevice(t *testing.T, m *rawMQTT, topic, payload string) {
	t.Helper()
	if err := m.send(publishPacket(topic, 0, 0, payload)); err != nil {
		t.Fatal(err)
	}
}

// expectPublish reads the next packet, a publish on topic, and returns its payload.
func expectPublish(t *testing.T, m *rawMQTT, topic string) string {
	t.Helper()
	pk := m.expect(packets.Publish, 10*time.Second)
	if pk.TopicName != topic {
		t.Fatalf("publish on %q (%s), want %q", pk.TopicName, pk.Payload, topic)
	}
	return string(pk.Payload)
}

func TestMQTTTwinGetAndReported(t *testing.T) {
	t.Parallel()
	th := newTwinHub(t, Options{})
	m, _ := connectHubDevice(t, th.e, 1, "tw-1")
	subscribeAll(t, m)

	publishFromDevice(t, m, "$iothub/twin/GET/?$rid=1", " ") // Node sends one space
	if got := expectPublish(t, m, "$iothub/twin/res/200/?$rid=1"); got != `{"desired":{"$version":1},"reported":{"$version":1}}` {
		t.Errorf("twin GET: %s", got)
	}
	publishFromDevice(t, m, "$iothub/twin/PATCH/properties/reported/?$rid=2", `{"fw":"1.0","net":{"rssi":-60,"ssid":"a"}}`)
	expectPublish(t, m, "$iothub/twin/res/204/?$rid=2&$version=2")
	publishFromDevice(t, m, "$iothub/twin/PATCH/properties/reported/?$rid=3", `{"net":{"rssi":null}}`)
	expectPublish(t, m, "$iothub/twin/res/204/?$rid=3&$version=3")

	w := th.do("GET", "/twins/tw-1", "")
	tw := decode[hubapi.Twin](t, w.Body.Bytes())
	if jsonOf(tw.Properties.Reported) != `{"$version":3,"fw":"1.0","net":{"ssid":"a"}}` || tw.Version != 3 || jsonOf(tw.Properties.Desired) != `{"$version":1}` {
		t.Errorf("service view: version %d reported %s desired %s", tw.Version, jsonOf(tw.Properties.Reported), jsonOf(tw.Properties.Desired))
	}

	// Bad patches are answered 400 with an errorCode (Node's error test) and change nothing.
	for rid, body := range map[string]string{"4": `[1]`, "5": `{"a.b":1}`, "6": `{`} {
		publishFromDevice(t, m, "$iothub/twin/PATCH/properties/reported/?$rid="+rid, body)
		if got := expectPublish(t, m, "$iothub/twin/res/400/?$rid="+rid); !strings.Contains(got, `"errorCode":400004`) {
			t.Errorf("reported %s: %s", body, got)
		}
	}
	if again := decode[hubapi.Twin](t, th.do("GET", "/twins/tw-1", "").Body.Bytes()); again.Version != 3 {
		t.Errorf("refused patches changed the twin: version %d", again.Version)
	}

	// Desired changes from the service reach the device with their $version.
	if w := th.do("PATCH", "/twins/tw-1", `{"properties":{"desired":{"interval":5,"old":null}}}`); w.Code != http.StatusOK {
		t.Fatalf("PATCH: %d %s", w.Code, w.Body)
	}
	if got := expectPublish(t, m, "$iothub/twin/PATCH/properties/desired/?$version=2"); got != `{"$version":2,"interval":5,"old":null}` {
		t.Errorf("desired notification: %s", got)
	}
	th.do("PATCH", "/twins/tw-1", `{"tags":{"only":"tags"}}`) // no desired change, no notification
	th.do("PUT", "/twins/tw-1", `{"properties":{"desired":{"rate":1}}}`)
	if got := expectPublish(t, m, "$iothub/twin/PATCH/properties/desired/?$version=3"); got != `{"$version":3,"rate":1}` {
		t.Errorf("desired notification after PUT: %s", got)
	}

	// Deleting the identity ends its connection.
	if w := th.do("DELETE", "/devices/tw-1", "", "If-Match", "*"); w.Code != http.StatusNoContent {
		t.Fatalf("DELETE: HTTP %d %s", w.Code, w.Body)
	}
	m.expectClosed(5 * time.Second)
	if w := th.do("GET", "/twins/tw-1", ""); w.Code != http.StatusNotFound {
		t.Errorf("twin of the deleted device: HTTP %d", w.Code)
	}
}

// TestMQTTConnectionState: the identity shows the live connection, and when
// it changed.
func TestMQTTConnectionState(t *testing.T) {
	t.Parallel()
	th := newTwinHub(t, Options{})
	m, _ := connectHubDevice(t, th.e, 1, "cs-1")
	d := decode[hubapi.Device](t, th.do("GET", "/devices/cs-1", "").Body.Bytes())
	if d.ConnectionState != "Connected" || d.LastActivityTime.IsZero() || d.ConnectionStateUpdatedTime.IsZero() {
		t.Fatalf("connected device: state %q, last activity %v, state changed %v", d.ConnectionState, d.LastActivityTime, d.ConnectionStateUpdatedTime)
	}
	connectedAt := d.ConnectionStateUpdatedTime
	m.conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for d.ConnectionState == "Connected" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		d = decode[hubapi.Device](t, th.do("GET", "/devices/cs-1", "").Body.Bytes())
	}
	if d.ConnectionState != "Disconnected" || !d.ConnectionStateUpdatedTime.After(connectedAt) {
		t.Errorf("after closing: state %q changed %v (connected %v)", d.ConnectionState, d.ConnectionStateUpdatedTime, connectedAt)
	}
	if tw := decode[hubapi.Twin](t, th.do("GET", "/twins/cs-1", "").Body.Bytes()); tw.ConnectionState != "Disconnected" {
		t.Errorf("twin connection state %q", tw.ConnectionState)
	}
}

// invoke calls a method in the background; the answer comes on the channel.
func (th *twinHub) invoke(body string) <-chan *httptest.ResponseRecorder {
	ch := make(chan *httptest.ResponseRecorder, 1)
	go func() { ch <- th.do("POST", "/twins/"+url.PathEscape(deviceOf(body))+"/methods", body) }()
	return ch
}

// deviceOf reads the device a test call is for from its "x-device" field.
func deviceOf(body string) string {
	_, rest, _ := strings.Cut(body, `"x-device":"`)
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// methodCallTo reads a method call arriving at the device and returns its $rid.
func methodCallTo(t *testing.T, m *rawMQTT, name, payload string) string {
	t.Helper()
	pk := m.expect(packets.Publish, 10*time.Second)
	prefix := "$iothub/methods/POST/" + name + "/?$rid="
	if !strings.HasPrefix(pk.TopicName, prefix) || string(pk.Payload) != payload {
		t.Fatalf("method call on %q with %s, want %s… with %s", pk.TopicName, pk.Payload, prefix, payload)
	}
	return strings.TrimPrefix(pk.TopicName, prefix)
}

func TestMQTTDirectMethods(t *testing.T) {
	t.Parallel()
	th := newTwinHub(t, Options{})
	a, _ := connectHubDevice(t, th.e, 1, "m-a")
	subscribeAll(t, a)
	b, _ := connectHubDevice(t, th.e, 1, "m-b")
	subscribeAll(t, b)

	call := th.invoke(`{"x-device":"m-a","methodName":"reboot","payload":{"delay":1},"responseTimeoutInSeconds":5}`)
	rid := methodCallTo(t, a, "reboot", `{"delay":1}`)
	// Another device answering with the same $rid is not device a.
	publishFromDevice(t, b, "$iothub/methods/res/200/?$rid="+rid, `{"forged":true}`)
	publishFromDevice(t, a, "$iothub/methods/res/201/?$rid="+rid, `{"ok":true}`)
	w := <-call
	if w.Code != http.StatusOK || w.Body.String() != `{"status":201,"payload":{"ok":true}}` {
		t.Errorf("method answer: HTTP %d %s", w.Code, w.Body)
	}

	// No payload is null; a device's non-JSON answer arrives as a string.
	call = th.invoke(`{"x-device":"m-b","methodName":"ping"}`)
	rid = methodCallTo(t, b, "ping", `null`)
	publishFromDevice(t, b, "$iothub/methods/res/200/?$rid="+rid, `pong`)
	if w := <-call; w.Code != http.StatusOK || w.Body.String() != `{"status":200,"payload":"pong"}` {
		t.Errorf("ping: HTTP %d %s", w.Code, w.Body)
	}

	// No answer within the response timeout: 504 504101.
	start := time.Now()
	call = th.invoke(`{"x-device":"m-a","methodName":"hang","responseTimeoutInSeconds":5}`)
	methodCallTo(t, a, "hang", `null`)
	w = <-call
	if w.Code != http.StatusGatewayTimeout || w.Header().Get("iothub-errorcode") != "GatewayTimeout" || !strings.Contains(w.Body.String(), "504101") {
		t.Errorf("unanswered: HTTP %d %s", w.Code, w.Body)
	}
	if took := time.Since(start); took < 5*time.Second || took > 8*time.Second {
		t.Errorf("the unanswered call took %v, want about 5 s", took)
	}

	// A connected device that has not subscribed to methods cannot take one.
	connectHubDevice(t, th.e, 1, "m-quiet")
	if w := <-th.invoke(`{"x-device":"m-quiet","methodName":"reboot"}`); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "404103") {
		t.Errorf("unsubscribed device: HTTP %d %s", w.Code, w.Body)
	}
	// With a connect timeout, the hub waits for the device to connect.
	hubDeviceFor(t, th.e, 1, "m-late")
	call = th.invoke(`{"x-device":"m-late","methodName":"hello","connectTimeoutInSeconds":10}`)
	time.Sleep(300 * time.Millisecond)
	if len(call) != 0 {
		t.Fatal("the call did not wait for the device to connect")
	}
	late, _ := connectHubDevice(t, th.e, 1, "m-late")
	subscribeAll(t, late)
	rid = methodCallTo(t, late, "hello", `null`)
	publishFromDevice(t, late, "$iothub/methods/res/200/?$rid="+rid, `{}`)
	if w := <-call; w.Code != http.StatusOK {
		t.Errorf("call that waited for the device: HTTP %d %s", w.Code, w.Body)
	}

	// An identity the hub does not have is DeviceNotFound; deleting one
	// that is connected and subscribed ends its session, so a call after
	// the delete finds no device either.
	if w := <-th.invoke(`{"x-device":"m-none","methodName":"reboot"}`); w.Code != http.StatusNotFound || w.Header().Get("iothub-errorcode") != "DeviceNotFound" {
		t.Errorf("unknown device: HTTP %d %s %s", w.Code, w.Header().Get("iothub-errorcode"), w.Body)
	}
	if w := th.do("DELETE", "/devices/m-b", "", "If-Match", "*"); w.Code != http.StatusNoContent {
		t.Fatalf("delete m-b: HTTP %d %s", w.Code, w.Body)
	}
	if w := <-th.invoke(`{"x-device":"m-b","methodName":"reboot"}`); w.Code != http.StatusNotFound || w.Header().Get("iothub-errorcode") != "DeviceNotFound" {
		t.Errorf("deleted device: HTTP %d %s %s", w.Code, w.Header().Get("iothub-errorcode"), w.Body)
	}

	for body, want := range map[string]string{
		`{"x-device":"m-a","methodName":"a/b"}`:                            "cannot hold",
		`{"x-device":"m-a","methodName":""}`:                               "methodName is required",
		`{"x-device":"m-a","methodName":"x","responseTimeoutInSeconds":1}`: "5 to 300",
		`{"x-device":"m-a","methodName":"x","connectTimeoutInSeconds":-1}`: "0 to 300",
	} {
		if w := <-th.invoke(body); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: HTTP %d %s, want 400 saying %s", body, w.Code, w.Body, want)
		}
	}
}

// TestMQTTDesiredNotificationsInOrder: concurrent service writes reach the
// device in $version order, each once.
func TestMQTTDesiredNotificationsInOrder(t *testing.T) {
	t.Parallel()
	th := newTwinHub(t, Options{})
	m, _ := connectHubDevice(t, th.e, 1, "ord-1")
	subscribeAll(t, m)
	const n = 20
	done := make(chan int, n)
	for i := range n {
		go func() {
			done <- th.do("PATCH", "/twins/ord-1", `{"properties":{"desired":{"n`+strconv.Itoa(i)+`":1}}}`).Code
		}()
	}
	for range n {
		if code := <-done; code != http.StatusOK {
			t.Fatalf("PATCH: HTTP %d", code)
		}
	}
	for v := 2; v <= n+1; v++ {
		pk := m.expect(packets.Publish, 10*time.Second)
		if want := "$iothub/twin/PATCH/properties/desired/?$version=" + strconv.Itoa(v); pk.TopicName != want {
			t.Fatalf("notification %q, want %q", pk.TopicName, want)
		}
	}
}
