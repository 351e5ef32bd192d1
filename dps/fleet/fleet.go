// Package fleet registers a fleet of simulated symmetric-key devices with
// DPS: IDs PREFIX-K … PREFIX-(K+N-1), keys derived from a group key, each
// device on its own connection the way real devices are (a TLS connection
// over HTTPS, an MQTT connection over mqtt and mqtt-ws). Devices start
// on a schedule (a rate or a ramp); every request passes a pacer that
// honours each Retry-After for the whole fleet: one for the registrations,
// which DPS's quota counts, one for the polls, which DPS limits apart. Every device's start and
// outcome are logged (fsynced) under <state-dir>/fleet-runs/<run>, so a
// stopped run resumes without registering any device twice.
package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/internal/journalfile"
	"github.com/dpsconsole/dpsconsole/internal/retryafter"
	"github.com/dpsconsole/dpsconsole/keys"
)

// TransportHTTPS is the default device transport; mqtt and mqtt-ws are
// the others (device.Transports).
const TransportHTTPS = string(device.TransportHTTPS)

// Config is one run of the engine.
type Config struct {
	StateDir string
	// Spec is the run: a new one from NewSpec, or with Resume one from
	// OpenSpec to continue.
	Spec   Spec
	Resume bool
	// Reregister, with Resume, registers every device of the run again,
	// those DPS registered already included, and asks DPS about none: a
	// second registration of each, counted on its own.
	Reregister       bool
	GroupKey         keys.Key // device keys derive from it
	ProvisioningHost string   // device endpoint host[:port]
	Schedule         Schedule // when devices start; the zero one starts them all at once
	Concurrency      int      // devices registering at once (and requests in flight)
	// NewHTTPClient returns a client with its own transport for one HTTPS
	// device: its own TLS connection, closed when the device is done (nil =
	// the fleet's own: deviceDialer.client). MQTT devices do not
	// use it: each opens its own MQTT connection.
	NewHTTPClient func() *http.Client
	// MQTTHost is DPS's MQTT host:port for --transport mqtt ("" = the
	// provisioning host's name on 8883); HubMQTTHost names a hub's ("" =
	// the hub's name on 8883). MQTT over WebSockets goes to the HTTPS hosts.
	MQTTHost    string
	HubMQTTHost func(hub string) string
	// TLSConfig says what the devices trust (nil = the system roots); each
	// connection uses DeviceTLS of it.
	TLSConfig *tls.Config
	// OnEvent, when set, hears every step of every device's registration
	// (from the device's goroutine): a verbose log, or a test's eye.
	OnEvent func(registrationID string, ev device.Event)
	// Lookup reads a registration record through the service API; a resumed
	// run asks it about devices whose register went out with no answer logged.
	Lookup func(ctx context.Context, registrationID string) (dps.DeviceRegistrationState, error)
	// Live, when set, is fed the run for a dashboard (Live.Board).
	Live *Live
	// Progress is called every ProgressEvery (default 500 ms) and at the end.
	Progress      func(Snapshot)
	ProgressEvery time.Duration
	// Drain is how long devices already registering may finish after ctx
	// is cancelled (default 30 s, DPS's own request timeout); new ones stop at once.
	Drain time.Duration
	// Telemetry is how many messages each assigned device then sends to its
	// hub, Interval apart (a device stays in flight while it sends).
	Telemetry int
	Interval  time.Duration
	// Retry is the retry policy of each device's requests (429 and faults);
	// the zero value means 8 retries, honouring Retry-After up to 5 min.
	Retry policy.RetryOptions
}

// ErrInterrupted is returned, wrapped, when ctx stopped the run early.
var ErrInterrupted = errors.New("interrupted")

// engine is one run in progress.
type engine struct {
	cfg   Config
	run   *run
	pacer *cleanup.Pacer // registrations: DPS's quota of operations
	polls *cleanup.Pacer // polls: not operations, throttled by DPS apart
	tls   *tls.Config    // every device connection's: DeviceTLS(cfg.TLSConfig)
	dial  *deviceDialer  // the HTTPS devices' connections
	tally *tally
	start time.Time
	stop  context.Context // the run's own: cancelled, no device starts, telemetry ends

	// probing is set while DPS throttles and the pacer has no rate yet (the
	// quota was spent before anything got through): requests then go one
	// at a time, so the next 429 meets one request, not the whole fleet.
	probing atomic.Bool
	probe   chan struct{}
}

// NewSpec checks a new run's parameters and returns its spec (not yet on disk).
func NewSpec(host, idScope, group, prefix string, start, count int, transport string) (Spec, error) {
	if count < 1 {
		return Spec{}, fmt.Errorf("the number of devices must be 1 or more, not %d", count)
	}
	if start < 0 {
		return Spec{}, fmt.Errorf("the first device number must be 0 or more, not %d", start)
	}
	now := time.Now().UTC()
	s := Spec{ID: journalfile.NewID(now), Created: now, Host: host, IDScope: idScope, Group: group, Prefix: prefix, Start: start, Count: count, Transport: transport}
	// Every ID of the run is the prefix, a dash and a number: checking the
	// first and the last (the longest) checks them all.
	for _, i := range []int{0, count - 1} {
		if err := keys.ValidateRegistrationID(s.RegistrationID(i)); err != nil {
			return Spec{}, fmt.Errorf("prefix %q makes registration ID %q, which is not valid: %v", prefix, s.RegistrationID(i), err)
		}
	}
	tr, err := device.ParseTransport(transport)
	if err != nil {
		return Spec{}, err
	}
	s.Transport = string(tr)
	return s, nil
}

// Run registers the devices of cfg.Spec not registered yet and returns the
// summary. ctx cancelled stops it: devices not started stay pending, and the
// error wraps ErrInterrupted.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 500 * time.Millisecond
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 30 * time.Second
	}
	if cfg.Retry.MaxRetries == 0 && cfg.Retry.RetryDelay == 0 {
		cfg.Retry = policy.RetryOptions{MaxRetries: 8, RetryDelay: time.Second, MaxRetryDelay: 5 * time.Minute}
	}
	if cfg.GroupKey.IsZero() {
		return Summary{}, errors.New("fleet: a group key is required to derive the device keys")
	}
	var r *run
	var err error
	if !cfg.Resume {
		if r, err = createRun(cfg.StateDir, cfg.Spec); err == nil {
			err = r.openLog()
		}
	} else {
		r, err = openRun(cfg.StateDir, cfg.Spec)
	}
	if err != nil {
		return Summary{}, err
	}
	e := &engine{cfg: cfg, run: r, pacer: cleanup.NewPacer(cfg.Concurrency), polls: cleanup.NewPacer(cfg.Concurrency), tally: newTally(cfg.Spec.Count, r.RegistrationID),
		start: time.Now(), probe: make(chan struct{}, 1), tls: DeviceTLS(cfg.TLSConfig)}
	e.dial = newDeviceDialer(e.tls)
	if cfg.Live != nil {
		cfg.Live.attach(e)
	}
	// Registrations DPS ran in earlier runs count (unless they are done
	// again); refusals are tried again.
	for _, l := range r.last {
		if e.skips(l) {
			e.tally.add(l, false)
		}
	}
	stopProgress := e.progress()
	runErr := e.startAll(ctx)
	stopProgress()
	if cerr := r.log.Close(); runErr == nil {
		runErr = cerr
	}
	s := e.tally.summary(r.ID, time.Since(e.start))
	s.Schedule = cfg.Schedule.String()
	if ctx.Err() != nil && s.Pending > 0 {
		s.Interrupted = true
		if runErr == nil {
			runErr = fmt.Errorf("%w: %d of %d devices finished; resume the run with --resume %s", ErrInterrupted, s.Finished, s.Total, r.ID)
		}
	}
	return s, runErr
}

// progress calls cfg.Progress at a fixed rate until the returned stop.
func (e *engine) progress() (stop func()) {
	if e.cfg.Progress == nil {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(e.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				e.cfg.Progress(e.tally.snapshot(now, now.Sub(e.start)))
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		now := time.Now()
		e.cfg.Progress(e.tally.snapshot(now, now.Sub(e.start)))
	}
}

// startAll starts every device not done yet, on the schedule, at most
// Concurrency at once, and waits for them.
func (e *engine) startAll(ctx context.Context) error {
	e.stop = ctx
	// Devices already registering finish on their own context, so a stop
	// does not leave registrations half done; Drain bounds the wait.
	devCtx, cancelDev := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDev()
	var wg sync.WaitGroup
	allDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(e.cfg.Drain)
			defer t.Stop()
			select {
			case <-t.C:
				cancelDev()
			case <-allDone:
			}
		case <-allDone:
		}
	}()
	defer close(allDone)

	slots := make(chan struct{}, e.cfg.Concurrency)
	started := 0
	var err error
loop:
	for i := range e.run.last {
		if e.skips(e.run.last[i]) {
			continue
		}
		if wait := time.Until(e.start.Add(e.cfg.Schedule.At(started))); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				break loop
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		if ctx.Err() != nil {
			<-slots
			break
		}
		if err = e.run.log.Err(); err != nil {
			<-slots
			break
		}
		started++
		wg.Add(1)
		e.tally.flight(1)
		go func() {
			defer func() { <-slots; e.tally.flight(-1); wg.Done() }()
			e.device(devCtx, i)
		}()
	}
	wg.Wait()
	if err == nil {
		err = e.run.log.Err()
	}
	return err
}

// skips reports whether the run leaves alone a device whose last logged
// line is l: DPS ran its registration, and a second one was not asked for.
func (e *engine) skips(l logLine) bool { return l.Outcome.final() && !e.cfg.Reregister }

// device registers device i, or finds it registered already.
func (e *engine) device(ctx context.Context, i int) {
	id := e.run.RegistrationID(i)
	prev := e.run.last[i].Outcome
	if (prev == OutcomeSent || prev == OutcomeLost) && !e.cfg.Reregister {
		// The register went out before, with no answer logged: DPS may have
		// run it. Ask rather than register the device a second time.
		if l, ok := e.lookup(ctx, id); ok {
			e.finish(i, id, l)
			return
		}
	}
	if err := <-e.run.log.AppendSynced(logLine{N: i, Outcome: OutcomeSent}); err != nil {
		return // the run stops on the log's error
	}
	l := e.register(ctx, id)
	if l.Outcome == OutcomeSent {
		return // stopped mid-way: the resumed run will ask
	}
	e.finish(i, id, l)
}

func (e *engine) finish(i int, id string, l logLine) {
	l.N = i
	e.run.log.Append(l)
	if l.Outcome.final() || l.Outcome == OutcomeError || l.Outcome == OutcomeLost {
		e.tally.add(l, true)
	}
}

// lookup reads the record of a device whose answer was lost; ok when DPS
// finished its registration during this run.
func (e *engine) lookup(ctx context.Context, id string) (logLine, bool) {
	if e.cfg.Lookup == nil {
		return logLine{}, false
	}
	st, err := e.cfg.Lookup(ctx, id)
	if err != nil {
		return logLine{}, false // not found (or unreadable): register it
	}
	// Allow for a clock difference with DPS.
	if st.LastUpdatedDateTimeUTC.Before(e.run.Created.Add(-time.Minute)) {
		return logLine{}, false
	}
	switch st.Status {
	case dps.StatusAssigned:
		return logLine{Outcome: OutcomeAssigned, Hub: st.AssignedHub, Substatus: string(st.Substatus)}, true
	case dps.StatusFailed:
		return logLine{Outcome: OutcomeFailed, Error: failedGroup(st.ErrorCode, st.ErrorMessage)}, true
	case dps.StatusDisabled:
		return logLine{Outcome: OutcomeDisabled, Error: "registration disabled"}, true
	}
	return logLine{}, false
}

// deviceThrottles counts the 429s of one device's requests (from the context).
type deviceThrottles struct{ n int }

type throttlesKey struct{}

// newHTTPClient is one HTTPS device's client: Config.NewHTTPClient's, or
// by default its own transport with the fleet's device TLS (deviceDialer).
func (e *engine) newHTTPClient() *http.Client {
	if e.cfg.NewHTTPClient != nil {
		return e.cfg.NewHTTPClient()
	}
	return e.dial.client()
}

// deviceTLS is the TLS of a device's own MQTT connection to DPS: over
// mqtt to the MQTT host (by default the provisioning host's name), over
// mqtt-ws to the provisioning host. HTTPS devices dial through e.dial.
func (e *engine) deviceTLS(tr device.Transport) *tls.Config {
	if !tr.IsMQTT() {
		return e.tls
	}
	host := e.cfg.ProvisioningHost
	if tr == device.TransportMQTT && e.cfg.MQTTHost != "" {
		host = e.cfg.MQTTHost
	}
	return e.dial.tlsFor(host)
}

// register runs one registration on the device's own connection: a TLS
// connection over HTTPS, one MQTT connection (one CONNECT) over MQTT, closed
// when the device is done.
func (e *engine) register(ctx context.Context, id string) logLine {
	key, err := keys.DeriveDeviceKey(e.cfg.GroupKey, id)
	if err != nil {
		return logLine{Outcome: OutcomeError, Error: err.Error()}
	}
	tr := device.Transport(e.run.Transport)
	opts := azcore.ClientOptions{Retry: e.cfg.Retry}
	if !tr.IsMQTT() {
		hc := e.newHTTPClient()
		defer hc.CloseIdleConnections()
		opts.Transport, opts.PerRetryPolicies = hc, []policy.Policy{gate{e}}
	}
	dc, err := device.NewClient(e.run.IDScope, &device.ClientOptions{ClientOptions: opts,
		ProvisioningHost: e.cfg.ProvisioningHost, Transport: tr, MQTTHost: e.cfg.MQTTHost, TLSConfig: e.deviceTLS(tr)})
	if err != nil {
		return logLine{Outcome: OutcomeError, Error: err.Error()}
	}
	th := &deviceThrottles{}
	ctx = context.WithValue(ctx, throttlesKey{}, th)
	accepted := false
	mp := &mqttPacing{e: e, ctx: ctx}
	defer mp.answered(device.Event{}) // a request given up on without an answer
	t0 := time.Now()
	st, err := dc.Register(ctx, id, key, &device.RegisterOptions{Progress: func(ev device.Event) {
		if ev.Step == device.StepAccepted {
			accepted = true
		}
		if tr.IsMQTT() {
			mp.step(ev)
		}
		if e.cfg.OnEvent != nil {
			e.cfg.OnEvent(id, ev)
		}
	}})
	l := logLine{Millis: time.Since(t0).Milliseconds(), Throttled: th.n}
	var de *device.Error
	switch {
	case err == nil:
		l.Outcome, l.Hub, l.Substatus = OutcomeAssigned, st.AssignedHub, string(st.Substatus)
		if e.cfg.Telemetry > 0 {
			// Registered: a stop need not wait for the messages.
			e.sendTelemetry(e.stop, opts, tr, st, key)
		}
	case ctx.Err() != nil:
		l.Outcome = OutcomeSent // no answer: the resumed run asks DPS
	case errors.As(err, &de) && de.Status == dps.StatusFailed:
		l.Outcome, l.Error = OutcomeFailed, failedGroup(de.ErrorCode, de.Message)
	case errors.As(err, &de) && de.Status == dps.StatusDisabled:
		l.Outcome, l.Error = OutcomeDisabled, "registration disabled"
	case errors.As(err, &de) && !accepted:
		// DPS refused the register (or the MQTT connection): the device is
		// not registered.
		l.Outcome, l.Error = OutcomeError, refusedGroup(de)
	case !accepted && tr.IsMQTT() && !mp.published:
		// No register went out (the connection failed): nothing to ask DPS.
		l.Outcome, l.Error = OutcomeError, errorGroup(err, id)
	default:
		// The answer was lost (a dropped connection, a refused poll): DPS
		// may have registered the device; a resumed run asks.
		l.Outcome, l.Error = OutcomeLost, errorGroup(err, id)
	}
	return l
}

// mqttPacing passes a device's MQTT requests through the fleet's pacer.
// Over MQTT the device client publishes, waits for res/{status} and resends
// a 429 after its retry-after itself, reporting each step synchronously
// before it goes on: so acquiring the pacer in the "request sent" and "poll
// sent" steps holds the publish back exactly as the gate holds an HTTPS
// request, and the answer's step (accepted, polled, retry with the
// retry-after of a 429, or error) releases it. Every request of the fleet,
// the resends of a 429 included, thus passes its pacer, and a 429 pauses
// the whole fleet's registrations (or polls) for its retry-after, not only
// the device it met.
type mqttPacing struct {
	e         *engine
	ctx       context.Context
	pending   func(status int, failed bool, retryAfter time.Duration) // the request waiting for its answer
	published bool                                                    // a register went out
}

func (m *mqttPacing) step(ev device.Event) {
	switch ev.Step {
	case device.StepRequestSent, device.StepPollSent:
		m.answered(device.Event{}) // never two at once; this is defensive
		if ev.Step == device.StepRequestSent {
			m.published = true
		}
		// An error here is the device's context ending: its publish then
		// ends on the same context, unanswered.
		m.pending, _ = m.e.pass(m.ctx, ev.Step == device.StepPollSent)
	case device.StepAccepted, device.StepPolled, device.StepRetry, device.StepError:
		m.answered(ev)
	}
}

// answered releases the request in flight, if any, with ev's answer (the
// zero Event: given up on, a fault).
func (m *mqttPacing) answered(ev device.Event) {
	if m.pending == nil {
		return
	}
	done := m.pending
	m.pending = nil
	failed := ev.Step == "" || ev.HTTPStatus >= 500 || (ev.Step == device.StepError && ev.HTTPStatus == 0)
	done(ev.HTTPStatus, failed, ev.RetryAfter)
}

// sendTelemetry sends the device's messages to its hub over the device's
// transport (opts carry its HTTP client); a failed message ends the
// device's telemetry. An MQTT connection to the hub closes when it is done.
func (e *engine) sendTelemetry(ctx context.Context, opts azcore.ClientOptions, tr device.Transport, st dps.DeviceRegistrationState, key keys.Key) {
	ho := &hub.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: opts.Transport, Retry: e.cfg.Retry}, Transport: tr, TLSConfig: e.tls}
	if e.cfg.HubMQTTHost != nil {
		ho.MQTTHost = e.cfg.HubMQTTHost(st.AssignedHub)
	}
	dc, err := hub.NewDeviceClient(st.AssignedHub, st.DeviceID, key, ho)
	if err == nil {
		defer dc.Close()
	}
	for i := 1; err == nil && i <= e.cfg.Telemetry; i++ {
		if i > 1 {
			if err = sleep(ctx, e.cfg.Interval); err != nil {
				break
			}
		}
		body := `{"deviceId":` + strconv.Quote(st.DeviceID) + `,"seq":` + strconv.Itoa(i) + `,"time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`
		err = dc.SendEvent(ctx, []byte(body), &hub.SendEventOptions{MessageID: st.DeviceID + "-" + strconv.Itoa(i),
			ContentType: "application/json", ContentEncoding: "utf-8", Properties: map[string]string{"source": "dpsconsole-fleet"}})
		if err == nil {
			e.tally.telemetrySent()
		}
	}
	if err != nil {
		e.tally.telemetryFailed(strings.ReplaceAll(err.Error(), st.DeviceID, "<id>"))
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OutcomeLost is a registration whose answer was lost: DPS may have done it.
const OutcomeLost Outcome = "lost"

// failedGroup names a failed registration's error for grouping.
func failedGroup(code int32, msg string) string {
	s := "registration failed"
	if code != 0 {
		s += " " + strconv.Itoa(int(code))
	}
	if msg != "" {
		s += ": " + msg
	}
	return s
}

// refusedGroup names a refusal as its transport gave it (HTTP 401, over
// MQTT res/401 or a CONNACK code), with DPS's code and advice: the same for
// every device it happened to.
func refusedGroup(de *device.Error) string {
	s := "HTTP " + strconv.Itoa(de.HTTPStatus)
	switch {
	case de.CONNACK != 0:
		s = "CONNACK " + strconv.Itoa(int(de.CONNACK))
	case de.Transport.IsMQTT():
		s = "res/" + strconv.Itoa(de.HTTPStatus)
	}
	if de.ErrorCode != 0 {
		s += " " + strconv.Itoa(int(de.ErrorCode))
	}
	if a := de.Advice(); a != "" {
		s += ": " + a
	}
	return s
}

// errorGroup is an error's text with the device's ID taken out, so that
// devices with the same error group together.
func errorGroup(err error, id string) string {
	var de *device.Error
	if errors.As(err, &de) {
		return refusedGroup(de)
	}
	return strings.ReplaceAll(err.Error(), id, "<id>")
}

// gate passes every request of every device through the fleet's pacers, so
// a 429 pauses the whole fleet for its Retry-After, not just one device.
type gate struct{ e *engine }

func (g gate) Do(req *policy.Request) (*http.Response, error) {
	// A device sends PUT register and GET polls.
	done, err := g.e.pass(req.Raw().Context(), req.Raw().Method == http.MethodGet)
	if err != nil {
		return nil, err
	}
	resp, err := req.Next()
	if err != nil {
		done(0, true, 0)
		return resp, err
	}
	var wait time.Duration
	if resp.StatusCode == http.StatusTooManyRequests {
		wait = retryafter.Response(resp, time.Now())
	}
	done(resp.StatusCode, resp.StatusCode >= 500, wait)
	return resp, err
}

// pass waits for the fleet's pacer of registrations, or of polls, to let one
// request go (a registration one at a time while probing) and returns the
// call that hands it the request's answer: its status (0 for none), whether
// it failed, and a 429's retry-after.
func (e *engine) pass(ctx context.Context, poll bool) (done func(status int, failed bool, retryAfter time.Duration), err error) {
	p := e.pacer
	if poll {
		p = e.polls
	}
	unprobe := func() {}
	if !poll && e.probing.Load() {
		select {
		case e.probe <- struct{}{}:
			unprobe = func() { <-e.probe }
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	sent, err := p.Acquire(ctx)
	if err != nil {
		unprobe()
		return nil, err
	}
	return func(status int, failed bool, wait time.Duration) {
		defer unprobe()
		throttled := status == http.StatusTooManyRequests
		if throttled {
			e.tally.throttle(wait)
			if th, ok := ctx.Value(throttlesKey{}).(*deviceThrottles); ok {
				th.n++
			}
		}
		p.Release(sent, throttled, failed, wait)
		if !poll && (throttled || e.probing.Load()) {
			_, rate := e.pacer.State()
			e.probing.Store(rate == 0 && (throttled || e.probing.Load()))
		}
	}, nil
}
