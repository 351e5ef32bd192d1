package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
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

// readMethodCall decodes and checks a method call; msg says what is wrong.
func readMethodCall(body io.Reader) (c methodCall, msg string) {
	b, err := io.ReadAll(io.LimitReader(body, 2*maxMethodPayload+1))
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
// over its MQTT connection. Without one the hub answers 404
// DeviceNotOnline (404103).
func (e *Emulator) hubInvokeMethod(h *hub, w http.ResponseWriter, r *http.Request, deviceID string) {
	call, msg := readMethodCall(r.Body)
	if msg != "" {
		writeHubError(w, http.StatusBadRequest, "ArgumentInvalid", msg)
		return
	}
	if _, ok := e.hubFind(h, w, r, deviceID); !ok {
		return
	}
	writeHubError(w, http.StatusNotFound, "DeviceNotOnline",
		"404103 device "+strconv.Quote(deviceID)+" is not connected, so it cannot run method "+strconv.Quote(call.MethodName)+"; connect it over MQTT and subscribe to $iothub/methods/POST/#")
}
