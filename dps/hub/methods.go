package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// Direct-method timeouts: Node azure-iothub's defaults, and IoT Hub's range
// for the response timeout.
const (
	DefaultMethodResponseTimeout = 30 * time.Second
	MinMethodResponseTimeout     = 5 * time.Second
	MaxMethodResponseTimeout     = 300 * time.Second
)

// MethodOptions are the optional parts of InvokeMethod.
type MethodOptions struct {
	// ResponseTimeout is how long the hub waits for the device's answer
	// (5 s to 300 s, whole seconds); 0 is 30 s.
	ResponseTimeout time.Duration
	// ConnectTimeout is how long the hub waits for the device to connect;
	// 0 fails at once when it is not connected.
	ConnectTimeout time.Duration
}

// MethodResult is the device's answer to a direct method.
type MethodResult struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

// methodRequest is the body of POST /twins/{id}/methods, as Node's
// DeviceMethod.invokeOn sends it.
type methodRequest struct {
	MethodName               string          `json:"methodName"`
	ResponseTimeoutInSeconds int             `json:"responseTimeoutInSeconds"`
	ConnectTimeoutInSeconds  int             `json:"connectTimeoutInSeconds"`
	Payload                  json.RawMessage `json:"payload"`
}

// InvokeMethod calls the direct method name on a connected device with a
// JSON payload (nil sends null) and returns the device's status and
// payload. A device that is not connected is a 404 (DeviceNotOnline), no
// answer in time a 504. It is never retried: the device may have acted.
func (c *RegistryClient) InvokeMethod(ctx context.Context, deviceID, name string, payload json.RawMessage, opts *MethodOptions) (MethodResult, error) {
	var o MethodOptions
	if opts != nil {
		o = *opts
	}
	if o.ResponseTimeout == 0 {
		o.ResponseTimeout = DefaultMethodResponseTimeout
	}
	if err := ValidateMethodCall(name, payload, &o); err != nil {
		return MethodResult{}, err
	}
	if payload == nil {
		payload = json.RawMessage("null")
	}
	body := methodRequest{MethodName: name, ResponseTimeoutInSeconds: int(o.ResponseTimeout / time.Second),
		ConnectTimeoutInSeconds: int(o.ConnectTimeout / time.Second), Payload: payload}
	ctx = policy.WithRetryOptions(ctx, policy.RetryOptions{MaxRetries: -1})
	// The hub answers within both timeouts; give the connection a little more.
	ctx, cancel := context.WithTimeout(ctx, o.ResponseTimeout+o.ConnectTimeout+10*time.Second)
	defer cancel()
	req, err := runtime.NewRequest(ctx, http.MethodPost, endpoint(c.host, "/twins/"+url.PathEscape(deviceID)+"/methods"))
	if err != nil {
		return MethodResult{}, err
	}
	if err := runtime.MarshalAsJSON(req, body); err != nil {
		return MethodResult{}, err
	}
	req.Raw().Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := c.pl.Do(req)
	if err != nil {
		return MethodResult{}, fmt.Errorf("invoke method %q on device %q in %s: %w", name, deviceID, c.host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return MethodResult{}, fmt.Errorf("invoke method %q on device %q in %s: %w", name, deviceID, c.host, c.newError(resp))
	}
	var res MethodResult
	if err := runtime.UnmarshalAsJSON(resp, &res); err != nil {
		return MethodResult{}, fmt.Errorf("invoke method %q on device %q in %s: the hub's answer: %w", name, deviceID, c.host, err)
	}
	return res, nil
}

// ValidateMethodCall checks what InvokeMethod checks before sending: a
// name, a JSON payload (or nil), timeouts in whole seconds within the hub's
// range (a zero response timeout stands for 30 s).
func ValidateMethodCall(name string, payload json.RawMessage, opts *MethodOptions) error {
	var o MethodOptions
	if opts != nil {
		o = *opts
	}
	if o.ResponseTimeout == 0 {
		o.ResponseTimeout = DefaultMethodResponseTimeout
	}
	switch {
	case name == "":
		return errors.New("a method name is required")
	case payload != nil && !json.Valid(payload):
		return fmt.Errorf("the payload of method %q is not valid JSON", name)
	case o.ResponseTimeout < MinMethodResponseTimeout || o.ResponseTimeout > MaxMethodResponseTimeout || o.ResponseTimeout%time.Second != 0:
		return fmt.Errorf("a method response timeout is whole seconds from %v to %v, not %v", MinMethodResponseTimeout, MaxMethodResponseTimeout, o.ResponseTimeout)
	case o.ConnectTimeout < 0 || o.ConnectTimeout > MaxMethodResponseTimeout || o.ConnectTimeout%time.Second != 0:
		return fmt.Errorf("a method connect timeout is whole seconds from 0 to %v, not %v", MaxMethodResponseTimeout, o.ConnectTimeout)
	}
	return nil
}
