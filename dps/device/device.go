// Package device registers a simulated device with DPS over HTTPS, the way a
// symmetric-key device does: PUT register, then poll the operation until it
// is assigned, failed or disabled. Registration is an azcore Poller with a
// custom polling handler; every step is reported, timestamped, to an optional
// progress callback so a console can draw it live.
package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// DefaultProvisioningHost is the global device endpoint of Azure DPS.
const DefaultProvisioningHost = "global.azure-devices-provisioning.net"

// APIVersion is the device API version sent: the one the C SDK and the
// DPS HTTPS how-to use against real DPS.
const APIVersion = "2021-06-01"

// DefaultPollInterval is the wait between polls when DPS sends no Retry-After;
// pass it as PollUntilDoneOptions.Frequency (the SDKs use 2 s too).
const DefaultPollInterval = 2 * time.Second

// Polling limit of DPS: at most pollBurst polls per pollWindow per device.
// pollMargin keeps the limit as DPS counts it, on arrival: our clock starts
// before the request leaves.
const (
	pollBurst  = 5
	pollWindow = 10 * time.Second
	pollMargin = 250 * time.Millisecond
)

// tokenLifetime is how long each signed device token is valid.
const tokenLifetime = time.Hour

// ClientOptions configures a Client.
type ClientOptions struct {
	azcore.ClientOptions
	// ProvisioningHost is host or host:port of the device endpoint;
	// "" means DefaultProvisioningHost.
	ProvisioningHost string
}

// Client registers devices of one ID scope.
type Client struct {
	host    string
	idScope string
	pl      runtime.Pipeline
}

// NewClient returns a client for the devices of idScope.
func NewClient(idScope string, opts *ClientOptions) (*Client, error) {
	if opts == nil {
		opts = &ClientOptions{}
	}
	if strings.TrimSpace(idScope) == "" {
		return nil, errors.New("an ID scope is required: copy it from the DPS overview (e.g. 0ne00000A0A) or pass --id-scope")
	}
	if strings.ContainsAny(idScope, "/?#% ") {
		return nil, fmt.Errorf("ID scope %q contains characters an ID scope never has; copy it from the DPS overview", idScope)
	}
	host := opts.ProvisioningHost
	if host == "" {
		host = DefaultProvisioningHost
	}
	if err := checkHost(host); err != nil {
		return nil, err
	}
	pl := runtime.NewPipeline("dpsconsole/device", "v1", runtime.PipelineOptions{}, &opts.ClientOptions)
	return &Client{host: host, idScope: idScope, pl: pl}, nil
}

// checkHost accepts host or host:port, without a scheme or path.
func checkHost(host string) error {
	u, err := url.Parse("https://" + host)
	if err != nil || u.Host != host || u.Hostname() == "" {
		return fmt.Errorf("provisioning host %q must be a host name or host:port, without https:// or a path", host)
	}
	return nil
}

// Host is the device endpoint the client talks to.
func (c *Client) Host() string { return c.host }

// IDScope is the scope the client registers devices in.
func (c *Client) IDScope() string { return c.idScope }

// RegisterOptions are the optional parts of a registration.
type RegisterOptions struct {
	// Payload is sent as the registration payload (custom allocation
	// webhooks see it); nil sends none.
	Payload json.RawMessage
	// Progress, when set, is called synchronously with every step.
	Progress func(Event)
}

// Step names a stage of a registration.
type Step string

const (
	StepRequestSent Step = "request sent"    // the PUT register went out
	StepAccepted    Step = "accepted"        // DPS answered with an operation id
	StepPollSent    Step = "poll sent"       // a GET on the operation went out
	StepPollWait    Step = "poll rate limit" // waiting to stay under 5 polls per 10 s
	StepPolled      Step = "polled"          // DPS answered a poll
	StepResult      Step = "result"          // a terminal status arrived
	StepError       Step = "error"           // a request failed
)

// Event is one reported step of a registration.
type Event struct {
	Time        time.Time
	Step        Step
	Poll        int                    // poll number, from 1, for poll steps
	HTTPStatus  int                    // status of the answer, when there was one
	OperationID string                 // once known
	Status      dps.RegistrationStatus // status DPS reported, when it did
	RetryAfter  time.Duration          // DPS's Retry-After on this answer; the wait for StepPollWait
	State       *dps.DeviceRegistrationState
	Err         error
}

// BeginRegister sends the register request for registrationID, signed with
// the device key (an individual enrollment key, or one derived from a group
// key), and returns a poller that follows the operation. Use
// PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: DefaultPollInterval});
// it honours DPS's Retry-After and never polls more than 5 times in 10 s.
// A failed or disabled registration ends with an *Error.
func (c *Client) BeginRegister(ctx context.Context, registrationID string, key keys.Key, opts *RegisterOptions) (*runtime.Poller[dps.DeviceRegistrationState], error) {
	if opts == nil {
		opts = &RegisterOptions{}
	}
	if err := keys.ValidateRegistrationID(registrationID); err != nil {
		return nil, err
	}
	if key.IsZero() {
		return nil, errors.New("a device key is required: the enrollment's key, or one derived from the group key")
	}
	if opts.Payload != nil && !json.Valid(opts.Payload) {
		return nil, errors.New("the registration payload is not valid JSON")
	}
	h := &handler{c: c, regID: registrationID, key: key, progress: opts.Progress}
	body, err := json.Marshal(dps.DeviceRegistration{RegistrationID: registrationID, Payload: opts.Payload})
	if err != nil {
		return nil, err
	}
	req, err := h.request(ctx, http.MethodPut, "/register", body)
	if err != nil {
		return nil, err
	}
	h.emit(Event{Step: StepRequestSent})
	resp, err := c.pl.Do(req)
	if err != nil {
		h.emit(Event{Step: StepError, Err: err})
		return nil, fmt.Errorf("register %s at %s: %w", registrationID, c.host, err)
	}
	st, err := h.read(resp)
	if err != nil {
		h.emit(Event{Step: StepError, HTTPStatus: resp.StatusCode, Err: err})
		return nil, err
	}
	h.opID = st.OperationID
	h.emit(Event{Step: StepAccepted, HTTPStatus: resp.StatusCode, Status: st.Status, RetryAfter: retryAfter(resp)})
	h.update(resp, st)
	return runtime.NewPoller(resp, c.pl, &runtime.NewPollerOptions[dps.DeviceRegistrationState]{Handler: h})
}

// handler follows one registration operation (runtime.PollingHandler).
type handler struct {
	c        *Client
	regID    string
	key      keys.Key
	progress func(Event)

	opID  string
	polls []time.Time // start times of the last pollBurst polls
	final *dps.RegistrationOperationStatus
	resp  *http.Response
}

func (h *handler) emit(e Event) {
	if h.progress == nil {
		return
	}
	e.Time = time.Now()
	if e.OperationID == "" {
		e.OperationID = h.opID
	}
	h.progress(e)
}

func (h *handler) Done() bool {
	return h.final != nil
}

func (h *handler) Poll(ctx context.Context) (*http.Response, error) {
	if h.final != nil {
		return h.resp, nil
	}
	// DPS allows 5 polls per 10 s per device; wait rather than be throttled.
	if len(h.polls) == pollBurst {
		if wait := time.Until(h.polls[0].Add(pollWindow + pollMargin)); wait > 0 {
			h.emit(Event{Step: StepPollWait, Poll: len(h.polls) + 1, RetryAfter: wait})
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		h.polls = h.polls[1:]
	}
	h.polls = append(h.polls, time.Now())
	n := len(h.polls)
	// The operation id goes into the path as DPS gave it ([A-Za-z0-9.-]).
	req, err := h.request(ctx, http.MethodGet, "/operations/"+url.PathEscape(h.opID), nil)
	if err != nil {
		return nil, err
	}
	h.emit(Event{Step: StepPollSent, Poll: n})
	resp, err := h.c.pl.Do(req)
	if err != nil {
		h.emit(Event{Step: StepError, Poll: n, Err: err})
		return nil, err
	}
	st, err := h.read(resp)
	if err != nil {
		h.emit(Event{Step: StepError, Poll: n, HTTPStatus: resp.StatusCode, Err: err})
		return nil, err
	}
	h.emit(Event{Step: StepPolled, Poll: n, HTTPStatus: resp.StatusCode, Status: st.Status, RetryAfter: retryAfter(resp), State: st.RegistrationState})
	h.update(resp, st)
	return resp, nil
}

// update records a status; a terminal one ends the operation.
func (h *handler) update(resp *http.Response, st *dps.RegistrationOperationStatus) {
	h.resp = resp
	switch st.Status {
	case dps.StatusAssigned, dps.StatusFailed, dps.StatusDisabled:
		h.final = st
		h.emit(Event{Step: StepResult, HTTPStatus: resp.StatusCode, Status: st.Status, State: st.RegistrationState})
	}
}

func (h *handler) Result(_ context.Context, out *dps.DeviceRegistrationState) error {
	if h.final == nil {
		return errors.New("the registration has not finished")
	}
	st := h.final.RegistrationState
	if st == nil {
		st = &dps.DeviceRegistrationState{RegistrationID: h.regID, Status: h.final.Status}
	}
	if h.final.Status != dps.StatusAssigned {
		return newStatusError(h.final.Status, st)
	}
	*out = *st
	return nil
}

// request builds a device API request for path under the registration.
func (h *handler) request(ctx context.Context, method, path string, body []byte) (*policy.Request, error) {
	u := "https://" + h.c.host + "/" + url.PathEscape(h.c.idScope) + "/registrations/" + url.PathEscape(h.regID) + path + "?api-version=" + APIVersion
	req, err := runtime.NewRequest(ctx, method, u)
	if err != nil {
		return nil, err
	}
	sr := h.c.idScope + "/registrations/" + h.regID
	req.Raw().Header.Set("Authorization", keys.SignSAS(sr, h.key, "registration", time.Now().Add(tokenLifetime)))
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(body)), "application/json; charset=utf-8"); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// read decodes a 200/202 answer, or turns any other into an *Error.
func (h *handler) read(resp *http.Response) (*dps.RegistrationOperationStatus, error) {
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return nil, newHTTPError(resp)
	}
	b, err := runtime.Payload(resp)
	if err != nil {
		return nil, fmt.Errorf("reading the DPS answer: %w", err)
	}
	var st dps.RegistrationOperationStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("DPS answered HTTP %d with a body that is not a registration status: %w", resp.StatusCode, err)
	}
	switch st.Status {
	case dps.StatusAssigned, dps.StatusFailed, dps.StatusDisabled:
	case dps.StatusAssigning, dps.StatusUnassigned:
		// Still running: the operation id is what we poll.
		if st.OperationID == "" && h.opID == "" {
			return nil, fmt.Errorf("DPS answered HTTP %d %s without an operation id to poll", resp.StatusCode, st.Status)
		}
	default:
		return nil, fmt.Errorf("DPS answered HTTP %d with unknown registration status %q", resp.StatusCode, st.Status)
	}
	if h.opID == "" {
		h.opID = st.OperationID
	}
	return &st, nil
}

// retryAfter reads integer-second Retry-After, as DPS sends it.
func retryAfter(resp *http.Response) time.Duration {
	var n int
	if _, err := fmt.Sscanf(resp.Header.Get("Retry-After"), "%d", &n); err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
