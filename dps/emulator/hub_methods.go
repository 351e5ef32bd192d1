package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Direct-method limits of IoT Hub: the payload is at most 128 KB, the
// response timeout 5 to 300 s (30 s when left out), the connect timeout 0
// to 300 s.
const (
	maxMethodPayload        = 128 << 10
	defaultMethodTimeoutSec = 30
	minMethodTimeoutSec     = 5
	maxMethodTimeoutSec     = 300
)

// methodCall is the body of POST /twins/{id}/methods.
type methodCall struct {
	MethodName               string          `json:"methodName"`
	Payload                  json.RawMessage `json:"payload"`
	ResponseTimeoutInSeconds *int            `json:"responseTimeoutInSeconds"`
	ConnectTimeoutInSeconds  *int            `json:"connectTimeoutInSeconds"`
}

// readMethodCall decodes and checks a method call of size bytes (-1 when
// not known); msg says what is wrong.
func readMethodCall(body io.Reader, size int64) (c methodCall, msg string) {
	var b []byte
	var err error
	switch {
	case size > 2*maxMethodPayload:
		return c, "the method call is larger than the hub accepts"
	case size >= 0: // one read of the right size, not ReadAll's doubling from 512 bytes
		b = make([]byte, size)
		_, err = io.ReadFull(body, b)
	default:
		b, err = io.ReadAll(io.LimitReader(body, 2*maxMethodPayload+1))
	}
	if err != nil || len(b) > 2*maxMethodPayload {
		return c, "the method call is larger than the hub accepts"
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, "the body is not a method call JSON object: " + err.Error()
	}
	if c.ResponseTimeoutInSeconds == nil {
		c.ResponseTimeoutInSeconds = new(int)
		*c.ResponseTimeoutInSeconds = defaultMethodTimeoutSec
	}
	if c.ConnectTimeoutInSeconds == nil {
		c.ConnectTimeoutInSeconds = new(int)
	}
	switch rt, ct := *c.ResponseTimeoutInSeconds, *c.ConnectTimeoutInSeconds; {
	case c.MethodName == "":
		return c, "methodName is required"
	case strings.ContainsAny(c.MethodName, "/?#+ \x00"):
		return c, "methodName " + strconv.Quote(c.MethodName) + " cannot hold '/', '?', '#', '+' or spaces: it goes into the device's MQTT topic"
	case len(c.Payload) > maxMethodPayload:
		return c, "the method payload is larger than 128 KB"
	case rt < minMethodTimeoutSec || rt > maxMethodTimeoutSec:
		return c, "responseTimeoutInSeconds must be 5 to 300, not " + strconv.Itoa(rt)
	case ct < 0 || ct > maxMethodTimeoutSec:
		return c, "connectTimeoutInSeconds must be 0 to 300, not " + strconv.Itoa(ct)
	}
	return c, ""
}

// hubInvokeMethod is POST /twins/{id}/methods: the call goes to the device
// over its MQTT connection ($iothub/methods/POST/{name}/?$rid=R), and the
// device's answer ($iothub/methods/res/{status}/?$rid=R) is the HTTP answer,
// {"status":..,"payload":..}. A device not connected and subscribed within
// connectTimeoutInSeconds is 404 DeviceNotOnline (404103); no answer within
// responseTimeoutInSeconds is 504 GatewayTimeout (504101).
func (e *Emulator) hubInvokeMethod(h *hub, w http.ResponseWriter, r *http.Request, deviceID string) {
	call, msg := readMethodCall(r.Body, r.ContentLength)
	if msg != "" {
		writeHubError(w, http.StatusBadRequest, "ArgumentInvalid", msg)
		return
	}
	ctx := r.Context()
	// A device connected and subscribed needs no registry read: its session
	// proves the identity (deleting one ends its session). Only a device
	// that is not is looked up, to tell DeviceNotFound from DeviceNotOnline.
	cl := e.methodReady(h, deviceID)
	if cl == nil {
		if _, ok := e.hubFind(h, w, r, deviceID); !ok {
			return
		}
		cl = e.methodClient(ctx, h, deviceID, time.Duration(*call.ConnectTimeoutInSeconds)*time.Second)
	}
	if cl == nil {
		writeHubError(w, http.StatusNotFound, "DeviceNotOnline",
			"404103 device "+strconv.Quote(deviceID)+" is not connected, so it cannot run method "+strconv.Quote(call.MethodName)+
				"; connect it over MQTT and subscribe to $iothub/methods/POST/#")
		return
	}
	ans, ok := e.callMethod(ctx, cl, h, deviceID, call, time.Duration(*call.ResponseTimeoutInSeconds)*time.Second)
	if !ok {
		writeHubError(w, http.StatusGatewayTimeout, "GatewayTimeout",
			"504101 device "+strconv.Quote(deviceID)+" did not answer method "+strconv.Quote(call.MethodName)+" within "+strconv.Itoa(*call.ResponseTimeoutInSeconds)+" s")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status  int             `json:"status"`
		Payload json.RawMessage `json:"payload"`
	}{ans.status, ans.payload})
}
