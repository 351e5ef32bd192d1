package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
)

// Error is a registration that did not end assigned: DPS refused the MQTT
// connection (CONNACK set), refused a request (HTTPStatus ≥ 300; over MQTT
// the status of its res/{status} topic), or the registration finished failed
// or disabled (HTTP 200, Status set). Unwrap gives the *azcore.ResponseError
// of a refused HTTPS request, or the *mqttconn.RefusedError of a CONNACK.
type Error struct {
	Transport  Transport // "" or https, mqtt, mqtt-ws
	CONNACK    byte      // the CONNACK return code that refused the connection; 0 when it was accepted
	HTTPStatus int
	Status     dps.RegistrationStatus // failed or disabled; "" when a request was refused
	ErrorCode  int32                  // DPS's 6-digit code, 0 when it sent none
	Message    string                 // DPS's own message
	TrackingID string
	State      *dps.DeviceRegistrationState // the record of a failed or disabled registration
	resp       *azcore.ResponseError
	connect    *mqttconn.RefusedError
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.CONNACK != 0 && e.connect != nil:
		b.WriteString(e.connect.Error())
	case e.Status == dps.StatusFailed:
		b.WriteString("registration failed")
	case e.Status == dps.StatusDisabled:
		b.WriteString("registration disabled")
	case e.Transport.IsMQTT():
		fmt.Fprintf(&b, "registration refused by DPS (status %d on the MQTT response topic)", e.HTTPStatus)
	default:
		fmt.Fprintf(&b, "registration refused by DPS (HTTP %d)", e.HTTPStatus)
	}
	if e.ErrorCode != 0 || e.Message != "" {
		b.WriteString(" [")
		if e.ErrorCode != 0 {
			b.WriteString(strconv.Itoa(int(e.ErrorCode)))
			if e.Message != "" {
				b.WriteString(" ")
			}
		}
		if e.Message != "" {
			b.WriteString(strconv.Quote(e.Message))
		}
		b.WriteString("]")
	}
	if a := e.Advice(); a != "" {
		b.WriteString(": ")
		b.WriteString(a)
	}
	return b.String()
}

func (e *Error) Unwrap() error {
	switch {
	case e.resp != nil:
		return e.resp
	case e.connect != nil:
		return e.connect
	}
	return nil
}

const adviceWrongKey = "wrong or underived key: derive the device key from the group key for this exact registration ID (or use the individual enrollment's key), and check the ID scope"

// Advice says in plain words what the error usually means and what to do.
func (e *Error) Advice() string {
	if e.connect != nil && e.connect.NotAuthorized() {
		return adviceWrongKey
	}
	if e.Status == dps.StatusDisabled {
		return "the device's enrollment or its enrollment group is disabled: enable it (provisioningStatus enabled) to let the device register"
	}
	switch e.ErrorCode {
	case 401000, 401002:
		return adviceWrongKey
	case 400208:
		return "no IoT hub could be selected: link a hub to DPS, or list a linked hub in the enrollment's iotHubs"
	case 400209:
		return "DPS is not authorised on the IoT hub: re-link the hub with a valid connection string"
	case 409203:
		return "the same registration ID is already registering: wait for that registration to finish, then retry"
	}
	switch {
	case e.ErrorCode >= 404000 && e.ErrorCode < 405000, e.HTTPStatus == http.StatusNotFound:
		return "no enrollment matches: check the ID scope and that an enrollment or group admits this registration ID"
	case e.HTTPStatus == http.StatusUnauthorized:
		return "wrong or underived key: derive the device key from the group key for this exact registration ID"
	case e.HTTPStatus == http.StatusTooManyRequests:
		return "DPS is throttling (1,000 registrations a minute per instance): retry after the Retry-After time"
	case e.Status == dps.StatusFailed && e.ErrorCode >= 500000:
		return "DPS could not assign the device (service or custom allocation webhook error): check the webhook and retry"
	case e.Status == dps.StatusFailed:
		return "DPS could not assign the device: check the enrollment's allocation settings and linked hubs"
	}
	return ""
}

// newHTTPError reads DPS's error body ({"errorCode","trackingId","message"}).
func newHTTPError(resp *http.Response) error {
	var d dps.ErrorDetails
	if b, err := runtime.Payload(resp); err == nil {
		_ = json.Unmarshal(b, &d) // a body that is not DPS's leaves d empty
	}
	code := ""
	if d.ErrorCode != 0 {
		code = strconv.Itoa(int(d.ErrorCode))
	}
	var re *azcore.ResponseError
	errors.As(runtime.NewResponseErrorWithErrorCode(resp, code), &re)
	return &Error{HTTPStatus: resp.StatusCode, ErrorCode: d.ErrorCode, Message: d.Message, TrackingID: d.TrackingID, resp: re}
}

// newMQTTError reads DPS's error body from a res/{status} answer.
func newMQTTError(tr Transport, status int, payload []byte) error {
	var d dps.ErrorDetails
	_ = json.Unmarshal(payload, &d) // a body that is not DPS's leaves d empty
	return &Error{Transport: tr, HTTPStatus: status, ErrorCode: d.ErrorCode, Message: d.Message, TrackingID: d.TrackingID}
}

// newStatusError describes a registration that ended failed or disabled.
func newStatusError(status dps.RegistrationStatus, st *dps.DeviceRegistrationState) error {
	return &Error{HTTPStatus: http.StatusOK, Status: status, ErrorCode: st.ErrorCode, Message: st.ErrorMessage, State: st}
}
