// Package device registers a simulated device with DPS the way a
// symmetric-key device does: send the registration, then poll the operation
// until it is assigned, failed or disabled. Over HTTPS (PUT register, GET the
// operation) registration is an azcore Poller with a custom polling handler;
// over MQTT and MQTT-over-WebSockets it is the same exchange on the
// $dps/registrations topics (mqtt.go). Every step is reported, timestamped,
// to an optional progress callback so a console can draw it live.
package device

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
	"github.com/dpsconsole/dpsconsole/internal/retryafter"
	"github.com/dpsconsole/dpsconsole/keys"
)

// Transport is how the device talks to DPS: HTTPS, MQTT or MQTT over
// WebSockets.
type Transport = mqttconn.Transport

const (
	TransportHTTPS  = mqttconn.HTTPS
	TransportMQTT   = mqttconn.MQTT
	TransportMQTTWS = mqttconn.WebSockets
)

// Transports lists the transports in the order a user picks them.
var Transports = mqttconn.Transports

// ParseTransport reads "https", "mqtt" or "mqtt-ws"; "" is HTTPS.
func ParseTransport(s string) (Transport, error) { return mqttconn.ParseTransport(s) }

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
	// ProvisioningHost is host or host:port of the device endpoint (HTTPS,
	// and MQTT over WebSockets on the same port); "" means
	// DefaultProvisioningHost.
	ProvisioningHost string
	// Transport is how devices register; "" is HTTPS.
	Transport Transport
	// MQTTHost is host:port of the MQTT endpoint; "" is the provisioning
	// host's name on port 8883, as on real DPS.
	MQTTHost string
	// TLSConfig is the TLS of the MQTT connections; nil takes the one of
	// ClientOptions.Transport when it is an *http.Client, else system roots.
	TLSConfig *tls.Config
}

// Client registers devices of one ID scope.
type Client struct {
	host      string
	idScope   string
	pl        runtime.Pipeline
	transport Transport
	mqttHost  string
	tls       *tls.Config
	retries   int // MQTT: resends of a request DPS answered 429 or 5xx
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
	tr, err := ParseTransport(string(opts.Transport))
	if err != nil {
		return nil, err
	}
	mqttHost := opts.MQTTHost
	if mqttHost == "" {
		mqttHost = hostName(host)
	} else if err := checkHost(mqttHost); err != nil {
		return nil, fmt.Errorf("MQTT %w", err)
	}
	tlsConf := opts.TLSConfig
	if tlsConf == nil {
		tlsConf = mqttconn.TLSConfigOf(opts.ClientOptions.Transport)
	}
	pl := runtime.NewPipeline("dpsconsole/device", "v1", runtime.PipelineOptions{}, &opts.ClientOptions)
	return &Client{host: host, idScope: idScope, pl: pl, transport: tr, mqttHost: mqttHost, tls: tlsConf,
		retries: retries(opts.Retry.MaxRetries)}, nil
}

// retries reads azcore's MaxRetries: 0 is its default of 3, -1 none.
func retries(max int32) int {
	switch {
	case max < 0:
		return 0
	case max == 0:
		return 3
	}
	return int(max)
}

// hostName is host without a port.
func hostName(host string) string {
	u, err := url.Parse("https://" + host)
	if err != nil {
		return host
	}
	return u.Hostname()
}

// checkHost accepts host or host:port, without a scheme or path.
func checkHost(host string) error {
	u, err := url.Parse("https://" + host)
	if err != nil || u.Host != host || u.Hostname() == "" {
		return fmt.Errorf("provisioning host %q must be a host name or host:port, without https:// or a path", host)
	}
	return nil
}

// Host is the device endpoint the client talks to: host[:port] over HTTPS,
// the broker URL over MQTT.
func (c *Client) Host() string {
	if c.transport.IsMQTT() {
		return c.mqttOptions("", "", "").Endpoint()
	}
	return c.host
}

// Transport is how the client registers devices.
func (c *Client) Transport() Transport { return c.transport }

// IDScope is the scope the client registers devices in.
func (c *Client) IDScope() string { return c.idScope }

// RegisterOptions are the optional parts of a registration.
type RegisterOptions struct {
	// Payload is sent as the registration payload (custom allocation
	// webhooks see it); nil sends none.
	Payload json.RawMessage
	// Progress, when set, is called synchronously with every step.
	Progress func(Event)
	// PollInterval is the wait between polls when DPS gives no
	// Retry-After; 0 is DefaultPollInterval. Used by Register.
	PollInterval time.Duration
}

// Step names a stage of a registration.
type Step string

const (
	StepConnecting  Step = "connecting"      // MQTT: CONNECT going out
	StepConnected   Step = "connected"       // MQTT: CONNACK 0
	StepSubscribed  Step = "subscribed"      // MQTT: SUBACK for the response topic
	StepRequestSent Step = "request sent"    // the register request went out
	StepAccepted    Step = "accepted"        // DPS answered with an operation id
	StepPollSent    Step = "poll sent"       // a GET on the operation went out
	StepPollWait    Step = "poll rate limit" // waiting to stay under 5 polls per 10 s
	StepPolled      Step = "polled"          // DPS answered a poll
	StepResult      Step = "result"          // a terminal status arrived
	StepRetry       Step = "retry"           // MQTT: DPS answered 429 or 5xx; the request goes again after RetryAfter
	StepError       Step = "error"           // a request failed
)

// Event is one reported step of a registration.
type Event struct {
	Time        time.Time
	Step        Step
	Poll        int                    // poll number, from 1, for poll steps
	HTTPStatus  int                    // status of the answer, when there was one (MQTT: the status in res/{status})
	OperationID string                 // once known
	Endpoint    string                 // MQTT: the broker URL, on StepConnecting
	Topic       string                 // MQTT: the topic published, subscribed to, or answered on
	QoS         byte                   // MQTT: the QoS the SUBACK granted
	Status      dps.RegistrationStatus // status DPS reported, when it did
	RetryAfter  time.Duration          // DPS's Retry-After on this answer; the wait for StepPollWait
	State       *dps.DeviceRegistrationState
	Err         error
}

// Register registers registrationID with the device key (an individual
// enrollment key, or one derived from a group key) over the client's
// transport and waits for the end: it honours DPS's Retry-After and never
// polls more than 5 times in 10 s. A failed or disabled registration, or one
// DPS refused, ends with an *Error.
func (c *Client) Register(ctx context.Context, registrationID string, key keys.Key, opts *RegisterOptions) (dps.DeviceRegistrationState, error) {
	if opts == nil {
		opts = &RegisterOptions{}
	}
	if c.transport.IsMQTT() {
		return c.registerMQTT(ctx, registrationID, key, opts)
	}
	p, err := c.BeginRegister(ctx, registrationID, key, opts)
	if err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	return p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: opts.pollInterval()})
}

func (o *RegisterOptions) pollInterval() time.Duration {
	if o.PollInterval <= 0 {
		return DefaultPollInterval
	}
	return o.PollInterval
}

// checkRegistration validates what a registration needs before it starts.
func checkRegistration(registrationID string, key keys.Key, opts *RegisterOptions) error {
	if err := checkDevice(registrationID, key); err != nil {
		return err
	}
	return checkPayload(opts)
}

func checkDevice(registrationID string, key keys.Key) error {
	if err := keys.ValidateRegistrationID(registrationID); err != nil {
		return err
	}
	if key.IsZero() {
		return errors.New("a device key is required: the enrollment's key, or one derived from the group key")
	}
	return nil
}

func checkPayload(opts *RegisterOptions) error {
	if opts.Payload != nil && !json.Valid(opts.Payload) {
		return errors.New("the registration payload is not valid JSON")
	}
	return nil
}

// Answer names the status of the event's answer as its transport shows it:
// "HTTP 202", or over MQTT "res/202" (the status segment of the topic).
func (e Event) Answer() string {
	if e.Topic != "" {
		return "res/" + strconv.Itoa(e.HTTPStatus)
	}
	return "HTTP " + strconv.Itoa(e.HTTPStatus)
}

// OnTopic is " on {topic}" for an MQTT step, "" over HTTPS: the tail of a
// line that says where a request went.
func (e Event) OnTopic() string {
	if e.Topic == "" {
		return ""
	}
	return " on " + e.Topic
}

// BeginRegister sends the register request for registrationID, signed with
// the device key (an individual enrollment key, or one derived from a group
// key), and returns a poller that follows the operation. Use
// PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: DefaultPollInterval});
// it honours DPS's Retry-After and never polls more than 5 times in 10 s.
// A failed or disabled registration ends with an *Error. It is HTTPS only;
// Register works over every transport.
func (c *Client) BeginRegister(ctx context.Context, registrationID string, key keys.Key, opts *RegisterOptions) (*runtime.Poller[dps.DeviceRegistrationState], error) {
	if opts == nil {
		opts = &RegisterOptions{}
	}
	if c.transport != TransportHTTPS {
		return nil, fmt.Errorf("BeginRegister is the HTTPS poller; this client registers over %s: use Register", c.transport)
	}
	if err := checkRegistration(registrationID, key, opts); err != nil {
		return nil, err
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
	h.emit(Event{Step: StepAccepted, HTTPStatus: resp.StatusCode, Status: st.Status, RetryAfter: retryafter.Response(resp, time.Now())})
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
	polls pollLimiter
	final *dps.RegistrationOperationStatus
	resp  *http.Response
}

func (h *handler) emit(e Event) { emit(h.progress, h.opID, e) }

// emit timestamps e and hands it to progress, if set.
func emit(progress func(Event), opID string, e Event) {
	if progress == nil {
		return
	}
	e.Time = time.Now()
	if e.OperationID == "" {
		e.OperationID = opID
	}
	progress(e)
}

// pollLimiter keeps one device under DPS's limit of 5 polls per 10 s.
type pollLimiter struct {
	starts []time.Time // start times of the last pollBurst polls
	count  int
}

// next waits, if the limit needs it, and returns the number of the poll
// that may go now; onWait hears of a wait before it starts.
func (l *pollLimiter) next(ctx context.Context, onWait func(poll int, wait time.Duration)) (int, error) {
	if len(l.starts) == pollBurst {
		if wait := time.Until(l.starts[0].Add(pollWindow + pollMargin)); wait > 0 {
			onWait(l.count+1, wait)
			if err := sleep(ctx, wait); err != nil {
				return 0, err
			}
		}
		l.starts = l.starts[1:]
	}
	l.starts = append(l.starts, time.Now())
	l.count++
	return l.count, nil
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (h *handler) Done() bool {
	return h.final != nil
}

func (h *handler) Poll(ctx context.Context) (*http.Response, error) {
	if h.final != nil {
		return h.resp, nil
	}
	// DPS allows 5 polls per 10 s per device; wait rather than be throttled.
	n, err := h.polls.next(ctx, func(poll int, wait time.Duration) {
		h.emit(Event{Step: StepPollWait, Poll: poll, RetryAfter: wait})
	})
	if err != nil {
		return nil, err
	}
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
	h.emit(Event{Step: StepPolled, Poll: n, HTTPStatus: resp.StatusCode, Status: st.Status, RetryAfter: retryafter.Response(resp, time.Now()), State: st.RegistrationState})
	h.update(resp, st)
	return resp, nil
}

// update records a status; a terminal one ends the operation.
func (h *handler) update(resp *http.Response, st *dps.RegistrationOperationStatus) {
	h.resp = resp
	if isFinal(st.Status) {
		h.final = st
		h.emit(Event{Step: StepResult, HTTPStatus: resp.StatusCode, Status: st.Status, State: st.RegistrationState})
	}
}

func isFinal(s dps.RegistrationStatus) bool {
	return s == dps.StatusAssigned || s == dps.StatusFailed || s == dps.StatusDisabled
}

func (h *handler) Result(_ context.Context, out *dps.DeviceRegistrationState) error {
	if h.final == nil {
		return errors.New("the registration has not finished")
	}
	st, err := result(h.regID, h.final)
	*out = st
	return err
}

// result is the registration state of a terminal status; failed and
// disabled are an *Error.
func result(regID string, final *dps.RegistrationOperationStatus) (dps.DeviceRegistrationState, error) {
	st := final.RegistrationState
	if st == nil {
		st = &dps.DeviceRegistrationState{RegistrationID: regID, Status: final.Status}
	}
	if final.Status != dps.StatusAssigned {
		return dps.DeviceRegistrationState{}, newStatusError(final.Status, st)
	}
	return *st, nil
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
	st, err := decodeStatus("HTTP "+strconv.Itoa(resp.StatusCode), b, h.opID)
	if err != nil {
		return nil, err
	}
	if h.opID == "" {
		h.opID = st.OperationID
	}
	return st, nil
}

// decodeStatus reads a RegistrationOperationStatus that DPS answered with
// (answer names it in errors, e.g. "HTTP 202"); a running one needs an
// operation id to poll, unless opID already is one.
func decodeStatus(answer string, b []byte, opID string) (*dps.RegistrationOperationStatus, error) {
	var st dps.RegistrationOperationStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("DPS answered %s with a body that is not a registration status: %w", answer, err)
	}
	switch st.Status {
	case dps.StatusAssigned, dps.StatusFailed, dps.StatusDisabled:
	case dps.StatusAssigning, dps.StatusUnassigned:
		// Still running: the operation id is what we poll.
		if st.OperationID == "" && opID == "" {
			return nil, fmt.Errorf("DPS answered %s %s without an operation id to poll", answer, st.Status)
		}
	default:
		return nil, fmt.Errorf("DPS answered %s with unknown registration status %q", answer, st.Status)
	}
	return &st, nil
}
