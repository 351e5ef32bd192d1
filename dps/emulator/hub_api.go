package emulator

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	hubapi "github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// maxHubMessage is IoT Hub's device-to-cloud message size limit.
const maxHubMessage = 256 << 10

// Registry query page sizes: IoT Hub's default and its cap.
const (
	defaultHubPage = 100
	maxHubPage     = 1000
)

// serveHub serves one linked hub's listener: device-to-cloud telemetry
// (device SAS, sr = {host}/devices/{id}, no skn) and the registry API
// (service SAS of the hub's iothubowner policy). Any api-version is accepted.
func (e *Emulator) serveHub(h *hub, w http.ResponseWriter, r *http.Request) {
	e.logRequest(r, h.HostName)
	if !capBody(w, r, e.opts.limits.maxBody, func(msg string) { writeHubError(w, http.StatusRequestEntityTooLarge, "MessageTooLarge", msg) }) {
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) >= 2 && strings.EqualFold(parts[0], "twins") {
		e.serveTwins(h, w, r, parts[1:])
		return
	}
	if len(parts) == 0 || !strings.EqualFold(parts[0], "devices") {
		writeHubError(w, http.StatusNotFound, "NotFound", "no such IoT hub path; this hub serves /devices/... and /twins/{id}")
		return
	}
	switch {
	case len(parts) == 4 && strings.EqualFold(parts[2], "messages") && strings.EqualFold(parts[3], "events") && r.Method == http.MethodPost:
		e.hubTelemetry(h, w, r, parts[1])
	case len(parts) == 2 && strings.EqualFold(parts[1], "query") && r.Method == http.MethodPost:
		if e.hubServiceAuth(h, w, r) {
			e.hubQuery(h, w, r)
		}
	case len(parts) == 1 && r.Method == http.MethodGet:
		if e.hubServiceAuth(h, w, r) {
			e.hubList(h, w, r)
		}
	case len(parts) == 2 && r.Method == http.MethodGet:
		if e.hubServiceAuth(h, w, r) {
			e.hubGet(h, w, r, parts[1])
		}
	case len(parts) == 2 && r.Method == http.MethodDelete:
		if e.hubServiceAuth(h, w, r) {
			e.hubDelete(h, w, r, parts[1])
		}
	default:
		writeHubError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" "+r.URL.Path+" is not served by this emulated hub")
	}
}

// writeHubError answers in IoT Hub's error shape, code in iothub-errorcode.
func writeHubError(w http.ResponseWriter, status int, code, msg string) {
	tracking := newGUID()
	w.Header().Set("iothub-errorcode", code)
	writeJSON(w, status, hubapi.ErrorBody{
		Message:          "ErrorCode:" + code + ";" + msg,
		ExceptionMessage: "Tracking ID:" + tracking + "-TimeStamp:" + time.Now().UTC().Format("01/02/2006 15:04:05"),
	})
}

// hubServiceAuth checks a service SAS (sr = the hub host, skn = its policy)
// or a bearer token.
func (e *Emulator) hubServiceAuth(h *hub, w http.ResponseWriter, r *http.Request) bool {
	if ok, handled := e.hubServiceEntra(h, w, r); handled { // bearer tokens (entra_auth.go)
		return ok
	}
	auth, now := r.Header.Get("Authorization"), time.Now()
	if h.verified.valid(auth, now) {
		return true
	}
	tok, err := keys.ParseSAS(auth)
	if err == nil && !strings.EqualFold(tok.KeyName, h.PolicyName) {
		err = fmt.Errorf("policy %q is not this hub's %q", tok.KeyName, h.PolicyName)
	}
	if err == nil {
		err = tok.Verify(h.key, h.HostName, now)
	}
	if err != nil {
		writeHubError(w, http.StatusUnauthorized, "IotHubUnauthorizedAccess", "Unauthorized: "+err.Error())
		return false
	}
	h.verified.add(auth, tok.Expiry)
	return true
}

func (e *Emulator) hubTelemetry(h *hub, w http.ResponseWriter, r *http.Request, deviceID string) {
	ctx := r.Context()
	refuse := func(msg string) {
		writeHubError(w, http.StatusUnauthorized, "IotHubUnauthorizedAccess", "Unauthorized: "+msg)
	}
	tok, err := keys.ParseSAS(r.Header.Get("Authorization"))
	if err != nil {
		refuse(err.Error())
		return
	}
	// Everything the token says on its own is checked before the device is
	// looked up: a caller without a key must not learn which IDs exist.
	resource := h.HostName + "/devices/" + deviceID
	policy := tok.KeyName != ""
	switch {
	case policy && !strings.EqualFold(tok.KeyName, h.PolicyName):
		refuse(fmt.Sprintf("policy %q is not this hub's; sign device tokens with no skn, or use the %s policy", tok.KeyName, h.PolicyName))
		return
	case policy:
		if err := tok.Verify(h.key, resource, time.Now()); err != nil {
			refuse(err.Error())
			return
		}
	case !time.Now().Before(tok.Expiry):
		refuse(keys.ErrSASExpired.Error() + "; sign a new one")
		return
	case !tok.Covers(resource):
		refuse(fmt.Sprintf("%v: it names %q, not %q", keys.ErrSASResource, tok.Resource, resource))
		return
	}
	d, err := e.store.hubDevice(ctx, h.Index, deviceID)
	switch {
	case err != nil && !errors.Is(err, errNotFound):
		e.hubInternal(w, err)
		return
	case policy && err != nil: // the caller holds the hub's key: tell it
		writeHubError(w, http.StatusNotFound, "DeviceNotFound", "Device "+strconv.Quote(deviceID)+" is not registered in "+h.HostName)
		return
	case !policy && !signedByDevice(tok, d): // a missing device has no keys: the same refusal
		refuse(keys.ErrSASSignature.Error() + " of device " + strconv.Quote(deviceID) + "; sign with the key the device provisioned with")
		return
	}
	if d.Status == "disabled" {
		refuse("device " + strconv.Quote(deviceID) + " is disabled")
		return
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r.Body, maxHubMessage+1))
	if err != nil {
		writeHubError(w, http.StatusBadRequest, "ArgumentInvalid", "could not read the whole message body; send it again")
		return
	}
	if n > maxHubMessage {
		writeHubError(w, http.StatusRequestEntityTooLarge, "MessageTooLarge", "the message is larger than 256 KB")
		return
	}
	if err := e.store.countMessage(ctx, h.Index, d.DeviceID); err != nil {
		e.hubInternal(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// signedByDevice reports whether either of the device's keys signed tok. A
// device not found (zero value) has no keys; its check costs the same two
// HMACs, so a refusal takes as long whether or not the device exists.
func signedByDevice(tok keys.SAS, d hubDevice) bool {
	ok := false
	for _, s := range []string{d.PrimaryKey, d.SecondaryKey} {
		k, err := keys.ParseKey(s)
		if err != nil {
			k = keys.Key{} // sign with no key: never a match, same cost
		}
		if tok.SignatureMatches(k) && err == nil {
			ok = true
		}
	}
	return ok
}

func (e *Emulator) hubInternal(w http.ResponseWriter, err error) {
	e.log.Error("hub API", "err", err)
	writeHubError(w, http.StatusInternalServerError, "ServerError", "internal error")
}

func (e *Emulator) hubGet(h *hub, w http.ResponseWriter, r *http.Request, deviceID string) {
	if d, ok := e.hubFind(h, w, r, deviceID); ok {
		writeJSON(w, http.StatusOK, wireDevice(d))
	}
}

// hubGetTwin is GET /twins/{id}: the device twin.
func (e *Emulator) hubGetTwin(h *hub, w http.ResponseWriter, r *http.Request, deviceID string) {
	if d, ok := e.hubFind(h, w, r, deviceID); ok {
		writeTwin(w, d)
	}
}

// hubFind reads one identity, answering 404 or 500 itself when it cannot.
func (e *Emulator) hubFind(h *hub, w http.ResponseWriter, r *http.Request, deviceID string) (hubDevice, bool) {
	d, err := e.store.hubDevice(r.Context(), h.Index, deviceID)
	if errors.Is(err, errNotFound) {
		writeHubError(w, http.StatusNotFound, "DeviceNotFound", "Device "+strconv.Quote(deviceID)+" is not registered in "+h.HostName)
		return d, false
	}
	if err != nil {
		e.hubInternal(w, err)
		return d, false
	}
	e.withPresence(h, &d)
	return d, true
}

func (e *Emulator) hubDelete(h *hub, w http.ResponseWriter, r *http.Request, deviceID string) {
	err := e.store.deleteHubDevice(r.Context(), h.Index, deviceID, r.Header.Get("If-Match"))
	switch {
	case errors.Is(err, errNotFound):
		writeHubError(w, http.StatusNotFound, "DeviceNotFound", "Device "+strconv.Quote(deviceID)+" is not registered in "+h.HostName)
	case errors.Is(err, errPrecondition):
		writeHubError(w, http.StatusPreconditionFailed, "PreconditionFailed", "the If-Match ETag does not match the device's")
	case err != nil:
		e.hubInternal(w, err)
	default:
		e.stats.hubDeviceDeleted(h.HostName, deviceID)
		e.disconnectDevice(h, deviceID)
		w.WriteHeader(http.StatusNoContent)
	}
}

// hubQuery is POST /devices/query: every device as a twin, paged with
// x-ms-max-item-count and x-ms-continuation (absent on the last page). Any
// query string is taken as SELECT * FROM devices.
func (e *Emulator) hubQuery(h *hub, w http.ResponseWriter, r *http.Request) {
	size := defaultHubPage
	if v := r.Header.Get("x-ms-max-item-count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeHubError(w, http.StatusBadRequest, "ArgumentInvalid", "x-ms-max-item-count must be a positive integer")
			return
		}
		size = min(n, maxHubPage)
	}
	after := ""
	if c := r.Header.Get("x-ms-continuation"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			writeHubError(w, http.StatusBadRequest, "ArgumentInvalid", "x-ms-continuation is not a token this hub issued")
			return
		}
		after = string(b)
	}
	devs, next, err := e.store.hubDevices(r.Context(), h.Index, after, size)
	if err != nil {
		e.hubInternal(w, err)
		return
	}
	twins := make([]hubapi.Twin, 0, len(devs))
	for _, d := range devs {
		e.withPresence(h, &d)
		twins = append(twins, wireTwin(d))
	}
	if next != "" {
		w.Header().Set("x-ms-continuation", base64.RawURLEncoding.EncodeToString([]byte(next)))
	}
	w.Header().Set("x-ms-item-type", "Twin")
	writeJSON(w, http.StatusOK, twins)
}

// hubList is GET /devices?top=N: at most N (1-1000, else 1000) identities.
func (e *Emulator) hubList(h *hub, w http.ResponseWriter, r *http.Request) {
	top := maxHubPage
	if n, err := strconv.Atoi(r.URL.Query().Get("top")); err == nil && n >= 1 && n <= maxHubPage {
		top = n
	}
	devs, _, err := e.store.hubDevices(r.Context(), h.Index, "", top)
	if err != nil {
		e.hubInternal(w, err)
		return
	}
	out := make([]hubapi.Device, 0, len(devs))
	for _, d := range devs {
		e.withPresence(h, &d)
		out = append(out, wireDevice(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func wireDevice(d hubDevice) hubapi.Device {
	return hubapi.Device{
		DeviceID:                   d.DeviceID,
		GenerationID:               d.GenerationID,
		ETag:                       d.ETag,
		ConnectionState:            connectionState(d),
		Status:                     d.Status,
		StatusUpdatedTime:          d.Updated,
		LastActivityTime:           d.LastActivity,
		ConnectionStateUpdatedTime: d.ConnectionChanged,
		Authentication: &hubapi.AuthenticationMechanism{Type: hubapi.AuthSAS,
			SymmetricKey: &hubapi.SymmetricKey{PrimaryKey: dps.Secret(d.PrimaryKey), SecondaryKey: dps.Secret(d.SecondaryKey)}},
		Capabilities: &dps.DeviceCapabilities{},
	}
}

func wireTwin(d hubDevice) hubapi.Twin {
	return hubapi.Twin{
		DeviceID:           d.DeviceID,
		ETag:               twinETag(d.TwinVersion),
		DeviceETag:         d.ETag,
		Status:             d.Status,
		StatusUpdateTime:   d.Updated,
		ConnectionState:    connectionState(d),
		LastActivityTime:   d.LastActivity,
		AuthenticationType: hubapi.AuthSAS,
		Version:            d.TwinVersion,
		Tags:               twinCollection(d.Tags),
		Properties:         &hubapi.TwinProperties{Desired: withVersion(d.Desired, d.DesiredVersion), Reported: withVersion(d.Reported, d.ReportedVersion)},
		Capabilities:       &dps.DeviceCapabilities{},
	}
}

// HubDevice is a device identity as the emulator holds it, for tests.
type HubDevice struct {
	DeviceID     string
	MessageCount int64
	LastActivity time.Time
}

// HubDevice returns deviceID's identity in the hub with host name hubHost
// (as in registration records), with its telemetry count.
func (e *Emulator) HubDevice(ctx context.Context, hubHost, deviceID string) (HubDevice, error) {
	for _, h := range e.hubs {
		if strings.EqualFold(h.HostName, hubHost) {
			d, err := e.store.hubDevice(ctx, h.Index, deviceID)
			if err != nil {
				return HubDevice{}, fmt.Errorf("device %q in hub %s: %w", deviceID, hubHost, err)
			}
			return HubDevice{DeviceID: d.DeviceID, MessageCount: d.MessageCount, LastActivity: d.LastActivity}, nil
		}
	}
	return HubDevice{}, fmt.Errorf("no linked hub named %q", url.PathEscape(hubHost))
}
