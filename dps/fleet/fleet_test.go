package fleet_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/fleet"
	"github.com/dpsconsole/dpsconsole/keys"
)

// fixture is an in-process emulator with one symmetric-key group.
type fixture struct {
	em       *emulator.Emulator
	svc      *dps.Client
	base     *http.Client // trusts the emulator's CA
	groupKey keys.Key
	stateDir string

	mu         sync.Mutex
	requests   []request // every device request, in order of answer
	clients    atomic.Int64
	handshakes atomic.Int64 // TLS handshakes of device clients
	liveConns  atomic.Int64 // device connections not closed yet
}

// request is one device request as the client saw it.
type request struct {
	start, end time.Time
	status     int
	retryAfter string
}

const groupID = "fleet"

func start(t testing.TB, opts emulator.Options) *fixture {
	t.Helper()
	opts.DataDir, opts.Seed = t.TempDir(), "none"
	em, err := emulator.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	base, err := dps.NewTransport(em.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := dps.NewClientFromConnectionString(em.Env().DPSConnectionString,
		&dps.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: base, Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	k := keys.GenerateKey()
	// Update the hub, reset the data: a device registered a second time gets
	// substatus deviceDataReset, so the records show every double registration.
	g := dps.EnrollmentGroup{EnrollmentGroupID: groupID, ReprovisionPolicy: &dps.ReprovisionPolicy{UpdateHubAssignment: true},
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: dps.Secret(k.Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}}
	if _, err := svc.CreateOrUpdateEnrollmentGroup(t.Context(), g, nil); err != nil {
		t.Fatal(err)
	}
	return &fixture{em: em, svc: svc, base: base, groupKey: k, stateDir: t.TempDir()}
}

// newHTTPClient is one device's client: its own transport, and every
// request recorded.
func (f *fixture) newHTTPClient() *http.Client {
	f.clients.Add(1)
	tr := f.base.Transport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		f.liveConns.Add(1)
		return &countedConn{Conn: c, live: &f.liveConns}, nil
	}
	return &http.Client{Transport: recorder{f, tr}, Timeout: 30 * time.Second}
}

type countedConn struct {
	net.Conn
	live *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.live.Add(-1) })
	return c.Conn.Close()
}

// connsClosed waits a little for every device connection to be closed: a
// connection handed back after the device's CloseIdleConnections is closed
// by the transport's own goroutine, which a loaded machine (the full suite
// beside other builds) may not run for a second.
func (f *fixture) connsClosed(t *testing.T) {
	t.Helper()
	for range 500 {
		if f.liveConns.Load() == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d device connections left open after the run", f.liveConns.Load())
}

type recorder struct {
	f    *fixture
	next *http.Transport
}

// CloseIdleConnections lets the engine hang up each device's connection.
func (r recorder) CloseIdleConnections() { r.next.CloseIdleConnections() }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	trace := &httptrace.ClientTrace{TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
		if err == nil {
			r.f.handshakes.Add(1)
		}
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	t0 := time.Now()
	resp, err := r.next.RoundTrip(req)
	rq := request{start: t0, end: time.Now()}
	if err == nil {
		rq.status, rq.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	r.f.mu.Lock()
	r.f.requests = append(r.f.requests, rq)
	r.f.mu.Unlock()
	return resp, err
}

func (f *fixture) config(t testing.TB, n int) fleet.Config {
	t.Helper()
	env := f.em.Env()
	spec, err := fleet.NewSpec(f.svc.Host(), env.IDScope, groupID, "dev", 1, n, fleet.TransportHTTPS)
	if err != nil {
		t.Fatal(err)
	}
	return fleet.Config{
		StateDir: f.stateDir, Spec: spec, GroupKey: f.groupKey, ProvisioningHost: env.DeviceEndpoint,
		Concurrency: 16, NewHTTPClient: f.newHTTPClient, Lookup: f.svc.GetRegistrationState,
	}
}

// records lists the group's registration records on the emulator.
func (f *fixture) records(t *testing.T) map[string]dps.DeviceRegistrationState {
	t.Helper()
	out := map[string]dps.DeviceRegistrationState{}
	p := f.svc.NewRegistrationStatePager(groupID, nil)
	for p.More() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Items {
			out[r.RegistrationID] = r
		}
	}
	return out
}

func TestFleetAssignsEveryDeviceOnItsOwnConnection(t *testing.T) {
	f := start(t, emulator.Options{})
	var snaps atomic.Int64
	cfg := f.config(t, 50)
	cfg.Progress = func(fleet.Snapshot) { snaps.Add(1) }
	cfg.ProgressEvery = 50 * time.Millisecond
	sum, err := fleet.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Assigned != 50 || sum.Finished != 50 || sum.Pending != 0 || sum.Failed != 0 {
		t.Fatalf("summary %+v", sum)
	}
	// One connection per device, kept for its register and its polls.
	if n, h := f.clients.Load(), f.handshakes.Load(); n != 50 || h != 50 {
		t.Errorf("%d HTTP clients and %d TLS handshakes for 50 devices, want one each", n, h)
	}
	recs := f.records(t)
	if len(recs) != 50 {
		t.Fatalf("%d records on the emulator, want 50", len(recs))
	}
	perHub := map[string]int{}
	for i := 1; i <= 50; i++ {
		r, ok := recs["dev-"+itoa(i)]
		if !ok || r.Status != dps.StatusAssigned {
			t.Fatalf("dev-%d: %+v", i, r)
		}
		perHub[r.AssignedHub]++
	}
	if len(perHub) < 2 {
		t.Errorf("every device went to one hub: %v", perHub)
	}
	got := map[string]int{}
	for _, h := range sum.ByHub {
		got[h.Hub] = h.Count
	}
	if len(got) != len(perHub) {
		t.Errorf("summary hubs %v, emulator %v", got, perHub)
	}
	for h, n := range perHub {
		if got[h] != n {
			t.Errorf("hub %s: summary %d, emulator %d", h, got[h], n)
		}
	}
	if len(sum.ByStatus) != 1 || sum.ByStatus[0] != (fleet.StatusCount{Status: "assigned", Substatus: "initialAssignment", Count: 50}) {
		t.Errorf("by status %+v", sum.ByStatus)
	}
	if sum.Latency.P50 <= 0 || sum.Latency.P99 < sum.Latency.P50 || sum.Latency.Max < sum.Latency.P99 {
		t.Errorf("latency %+v", sum.Latency)
	}
	if snaps.Load() == 0 {
		t.Error("no progress snapshot")
	}
	f.connsClosed(t)
}

func TestFleetPacesAtTheRate(t *testing.T) {
	f := start(t, emulator.Options{})
	cfg := f.config(t, 30)
	const rate = 40.0
	cfg.Schedule = fleet.Schedule{From: rate, To: rate}
	var mu sync.Mutex
	var starts []time.Time
	next := cfg.NewHTTPClient
	cfg.NewHTTPClient = func() *http.Client {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return next()
	}
	if _, err := fleet.Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	span := starts[len(starts)-1].Sub(starts[0]).Seconds()
	got := float64(len(starts)-1) / span
	if ratio := got / rate; ratio < 0.85 || ratio > 1.05 {
		t.Errorf("devices started at %.1f/s, %.2f × the %.0f/s asked", got, ratio, rate)
	}
}

// TestFleetHonoursRetryAfter: past the emulator's rate limit every 429's
// Retry-After pauses the whole fleet, and once the pacer has seen the limit
// hardly any request is throttled again.
func TestFleetHonoursRetryAfter(t *testing.T) {
	// Most of the quota is spent (by "another client"): the fleet starts
	// with about a second's worth left.
	t.Run("quota nearly spent", func(t *testing.T) { throttledFleet(t, 120, time.Second, fleet.TransportHTTPS) })
	// All of it: the first request is throttled, nothing measured yet.
	t.Run("quota spent", func(t *testing.T) { throttledFleet(t, 120, 0, fleet.TransportHTTPS) })
	// Over MQTT a 429 is res/429 with retry-after, resent by the device
	// client: the fleet's pacer must see it all the same.
	t.Run("mqtt quota nearly spent", func(t *testing.T) { throttledFleet(t, 120, time.Second, "mqtt") })
	t.Run("mqtt quota spent", func(t *testing.T) { throttledFleet(t, 120, 0, "mqtt") })
}

func throttledFleet(t *testing.T, devices int, left time.Duration, tr string) {
	// The bucket holds a minute's worth; the drain must outrun its refill
	// on a busy machine, so keep it small.
	const perMinute = 1800
	f := start(t, emulator.Options{ThrottlePerMinute: perMinute})
	drain(t, f)
	time.Sleep(left)
	before := f.em.Stats().Throttled
	cfg := f.config(t, devices)
	if tr != fleet.TransportHTTPS {
		cfg, _ = f.mqttConfig(t, devices, tr)
		// The requests as the devices report them: a publish (when the
		// engine lets it go, after the pacer: OnEvent comes after it), and
		// the res/429 that answers one.
		cfg.OnEvent = func(_ string, ev device.Event) {
			var rq request
			switch {
			case ev.Step == device.StepRequestSent || ev.Step == device.StepPollSent:
				rq.start = time.Now()
			case ev.HTTPStatus == http.StatusTooManyRequests:
				rq = request{end: ev.Time, status: ev.HTTPStatus, retryAfter: strconv.Itoa(int(ev.RetryAfter.Seconds()))}
			default:
				return
			}
			f.mu.Lock()
			f.requests = append(f.requests, rq)
			f.mu.Unlock()
		}
	}
	cfg.Concurrency = 8
	sum, err := fleet.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Assigned != devices {
		t.Fatalf("summary %+v", sum)
	}
	throttled := f.em.Stats().Throttled - before
	if throttled == 0 {
		t.Fatal("the fleet was never throttled; the test proves nothing")
	}
	if sum.Throttled != throttled {
		t.Errorf("summary counts %d 429s, the emulator sent %d", sum.Throttled, throttled)
	}
	if sum.ThrottleWait <= 0 || sum.MaxRetryAfter <= 0 {
		t.Errorf("429 waits not counted: %+v", sum)
	}
	f.mu.Lock()
	reqs := append([]request(nil), f.requests...)
	f.mu.Unlock()
	// No request starts inside a pause: from a 429's answer to its
	// Retry-After. (A request the pacer let go just before the 429 reached
	// it may still be on its way to the wire: allow 50 ms.)
	for _, th := range reqs {
		if th.status != http.StatusTooManyRequests {
			continue
		}
		ra, _ := time.ParseDuration(th.retryAfter + "s")
		from, until := th.end.Add(50*time.Millisecond), th.end.Add(ra-50*time.Millisecond)
		for _, r := range reqs {
			if r.start.After(from) && r.start.Before(until) {
				t.Fatalf("a request went %v after a 429 with Retry-After %s", r.start.Sub(th.end), th.retryAfter)
			}
		}
	}
	sent := 0
	for _, r := range reqs {
		if !r.start.IsZero() {
			sent++
		}
	}
	// The first back-off may meet every request then in flight.
	after := throttled - cfg.Concurrency
	t.Logf("%d requests, %d throttled (%d beyond the first back-off)", sent, throttled, max(after, 0))
	if float64(after) >= 0.01*float64(sent) {
		t.Errorf("%d 429s beyond the first back-off out of %d requests: over 1 %%", after, sent)
	}
}

// drain spends the emulator's token bucket with service reads.
func drain(t testing.TB, f *fixture) {
	t.Helper()
	var wg sync.WaitGroup
	var done atomic.Bool
	for range 8 {
		wg.Go(func() {
			for !done.Load() {
				_, err := f.svc.GetEnrollmentGroup(t.Context(), groupID)
				var re *azcore.ResponseError
				if errors.As(err, &re) && re.StatusCode == http.StatusTooManyRequests {
					done.Store(true)
				} else if err != nil {
					t.Error(err)
					done.Store(true)
				}
			}
		})
	}
	wg.Wait()
}

// TestFleetResumeRegistersEachDeviceOnce: a run stopped half-way and
// resumed registers every device, and none twice (the emulator's records
// say deviceDataReset for a second registration).
func TestFleetResumeRegistersEachDeviceOnce(t *testing.T) {
	t.Run("https", func(t *testing.T) { resumeOnce(t, fleet.TransportHTTPS) })
	t.Run("mqtt", func(t *testing.T) { resumeOnce(t, "mqtt") })
}

func resumeOnce(t *testing.T, tr string) {
	f := start(t, emulator.Options{AssignmentDelay: 300 * time.Millisecond})
	cfg := f.config(t, 60)
	var connects atomic.Int64 // devices that went to DPS over MQTT
	if tr != fleet.TransportHTTPS {
		cfg, _ = f.mqttConfig(t, 60, tr)
		cfg.OnEvent = func(_ string, ev device.Event) {
			if ev.Step == device.StepConnecting {
				connects.Add(1)
			}
		}
	}
	cfg.Concurrency = 8
	sum, err := runStoppedAfter(t, cfg, 20)
	if !errors.Is(err, fleet.ErrInterrupted) {
		t.Fatalf("stopped run: %v", err)
	}
	if !sum.Interrupted || sum.Finished < 20 || sum.Finished >= 60 || !strings.Contains(err.Error(), "--resume "+sum.Run) {
		t.Fatalf("stopped run: %+v, %v", sum, err)
	}
	first := sum.Finished
	if n := len(f.records(t)); n != first {
		t.Errorf("the emulator has %d records, the run says %d finished (in-flight ones should have drained)", n, first)
	}

	spec, err := fleet.OpenSpec(f.stateDir, sum.Run)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Spec, cfg.Resume, cfg.Progress = spec, true, nil
	sum, err = fleet.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Assigned != 60 || sum.ThisRun != 60-first {
		t.Fatalf("resumed run: %+v (first run finished %d)", sum, first)
	}
	recs := f.records(t)
	if len(recs) != 60 {
		t.Fatalf("%d records, want 60", len(recs))
	}
	for id, r := range recs {
		if r.Substatus != dps.SubstatusInitialAssignment {
			t.Errorf("%s registered more than once: substatus %s", id, r.Substatus)
		}
	}
	// Resuming a finished run registers nothing.
	n, m := f.clients.Load(), connects.Load()
	if sum, err = fleet.Run(t.Context(), cfg); err != nil || sum.ThisRun != 0 || f.clients.Load() != n || connects.Load() != m {
		t.Fatalf("resuming a finished run: %+v, %v", sum, err)
	}
}

// runStoppedAfter runs cfg and stops it (as ctrl+c does) once n devices finished.
func runStoppedAfter(t *testing.T, cfg fleet.Config, n int) (fleet.Summary, error) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg.Progress = func(s fleet.Snapshot) {
		if s.Done >= n {
			cancel()
		}
	}
	cfg.ProgressEvery = 10 * time.Millisecond
	return fleet.Run(ctx, cfg)
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestFleetTelemetryAfterAssignment(t *testing.T) {
	f := start(t, emulator.Options{})
	cfg := f.config(t, 6)
	cfg.Telemetry, cfg.Interval = 3, 20*time.Millisecond
	sum, err := fleet.Run(t.Context(), cfg)
	if err != nil || sum.Assigned != 6 || sum.TelemetrySent != 18 || sum.TelemetryFailed != 0 {
		t.Fatalf("%+v, %v", sum, err)
	}
	for id, r := range f.records(t) {
		d, err := f.em.HubDevice(t.Context(), r.AssignedHub, r.DeviceID)
		if err != nil || d.MessageCount != 3 {
			t.Errorf("%s: %+v, %v", id, d, err)
		}
	}
	f.connsClosed(t) // the hub's connections too
}

// TestFleetResumeAfterACrashAsksDPS: a process killed between a device's
// register and its logged answer leaves only the "sent" line. The resumed
// run reads that device's record: one DPS registered is counted, not
// registered again; one DPS never saw is registered.
func TestFleetResumeAfterACrashAsksDPS(t *testing.T) {
	f := start(t, emulator.Options{})
	cfg := f.config(t, 10)
	sum, err := fleet.Run(t.Context(), cfg)
	if err != nil || sum.Assigned != 10 {
		t.Fatalf("%+v, %v", sum, err)
	}
	// Forge the crash: devices 0-3 have only "sent"; device 4's record is
	// gone too, as if its register never reached DPS.
	logPath := filepath.Join(fleet.RunsDir(f.stateDir), sum.Run, "outcomes.jsonl")
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for line := range strings.Lines(string(data)) {
		var l struct {
			N int    `json:"n"`
			O string `json:"o"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.N <= 4 && l.O != "sent" {
			continue
		}
		kept = append(kept, line)
	}
	if err := os.WriteFile(logPath, []byte(strings.Join(kept, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteRegistrationState(t.Context(), "dev-5", nil); err != nil {
		t.Fatal(err)
	}

	spec, err := fleet.OpenSpec(f.stateDir, sum.Run)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Spec, cfg.Resume = spec, true
	before := f.clients.Load()
	sum, err = fleet.Run(t.Context(), cfg)
	if err != nil || sum.Assigned != 10 || sum.ThisRun != 5 {
		t.Fatalf("resumed: %+v, %v", sum, err)
	}
	if n := f.clients.Load() - before; n != 1 {
		t.Errorf("the resumed run registered %d devices, want 1 (dev-5)", n)
	}
	recs := f.records(t)
	if len(recs) != 10 {
		t.Fatalf("%d records", len(recs))
	}
	for id, r := range recs {
		if r.Substatus != dps.SubstatusInitialAssignment {
			t.Errorf("%s registered twice: %s", id, r.Substatus)
		}
	}
}

// TestFleetReregister: a resumed run asked to (Reregister) registers every
// device of the run again, those DPS registered already included, and
// counts only its own outcomes; without it a finished run registers none.
func TestFleetReregister(t *testing.T) {
	f := start(t, emulator.Options{})
	cfg := f.config(t, 8)
	sum, err := fleet.Run(t.Context(), cfg)
	if err != nil || sum.Assigned != 8 {
		t.Fatalf("%+v, %v", sum, err)
	}
	// One device lost its answer: a reregistering run does not ask DPS
	// about it, it registers it like the others.
	logPath := filepath.Join(fleet.RunsDir(f.stateDir), sum.Run, "outcomes.jsonl")
	lf, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lf.WriteString(`{"n":7,"o":"lost","e":"EOF"}` + "\n")
	lf.Close()
	spec, err := fleet.OpenSpec(f.stateDir, sum.Run)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Spec, cfg.Resume, cfg.Reregister = spec, true, true
	var looked atomic.Int64
	lookup := cfg.Lookup
	cfg.Lookup = func(ctx context.Context, id string) (dps.DeviceRegistrationState, error) {
		looked.Add(1)
		return lookup(ctx, id)
	}
	before := f.clients.Load()
	sum, err = fleet.Run(t.Context(), cfg)
	if err != nil || sum.Assigned != 8 || sum.ThisRun != 8 || sum.Finished != 8 {
		t.Fatalf("reregistered: %+v, %v", sum, err)
	}
	if n := f.clients.Load() - before; n != 8 || looked.Load() != 0 {
		t.Errorf("%d devices registered again, %d looked up; want 8 and 0", n, looked.Load())
	}
	for id, r := range f.records(t) {
		if r.Substatus != dps.SubstatusDeviceDataReset {
			t.Errorf("%s not registered a second time: substatus %s", id, r.Substatus)
		}
	}
	// Done again: a plain resume registers nothing.
	cfg.Reregister = false
	before = f.clients.Load()
	if sum, err = fleet.Run(t.Context(), cfg); err != nil || sum.ThisRun != 0 || sum.Assigned != 8 || f.clients.Load() != before {
		t.Fatalf("resuming the reregistered run: %+v, %v", sum, err)
	}
}

// TestFleetAtTheQuota is the 3-minute benchmark BenchmarkFleetThrottled
// scaled down 10×: the emulator throttles at 600 operations a minute, its
// quota already spent by another client, and the fleet paces at that
// quota, as it does by default against a real DPS. It finishes in about
// the time the quota allows, at ≥ 90 % of the allowed rate, with < 1 % of
// its requests answered 429.
func TestFleetAtTheQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 30 s")
	}
	res := quotaRun(t, 600, 300)
	t.Logf("%+v", res)
	res.check(t)
}

// quotaResult is one run at the quota.
type quotaResult struct {
	devices, requests, throttled int
	elapsed                      time.Duration
	share                        float64 // registrations a minute ÷ the quota
}

func (r quotaResult) check(t testing.TB) {
	t.Helper()
	if r.share < 0.9 {
		t.Errorf("%d devices in %v: %.0f %% of the allowed rate, want ≥ 90 %%", r.devices, r.elapsed.Round(time.Millisecond), 100*r.share)
	}
	if float64(r.throttled) >= 0.01*float64(r.requests) {
		t.Errorf("%d of %d requests answered 429, want < 1 %%", r.throttled, r.requests)
	}
}

// quotaRun registers devices against an emulator throttled at perMinute
// whose bucket is spent, the fleet paced at perMinute.
func quotaRun(t testing.TB, perMinute, devices int) quotaResult {
	f := start(t, emulator.Options{ThrottlePerMinute: perMinute, AssignmentDelay: time.Second})
	drain(t, f)
	before := f.em.Stats().Throttled
	cfg := f.config(t, devices)
	cfg.Concurrency = 100
	rate := float64(perMinute) / 60
	cfg.Schedule = fleet.Schedule{From: rate, To: rate}
	t0 := time.Now()
	sum, err := fleet.Run(t.Context(), cfg)
	el := time.Since(t0)
	if err != nil || sum.Assigned != devices {
		t.Fatalf("%+v, %v", sum, err)
	}
	f.mu.Lock()
	requests := len(f.requests)
	f.mu.Unlock()
	return quotaResult{devices: devices, requests: requests, throttled: f.em.Stats().Throttled - before, elapsed: el,
		share: float64(devices) / el.Minutes() / float64(perMinute)}
}

// TestFleetDefaultClientOneConnectionPerDevice: the engine's own HTTPS
// client (no Config.NewHTTPClient) gives each device one connection, for
// its register and its poll, closed when it is done.
func TestFleetDefaultClientOneConnectionPerDevice(t *testing.T) {
	f := start(t, emulator.Options{AssignmentDelay: 300 * time.Millisecond})
	cfg := f.config(t, 20)
	relayed := relay(t, f.em.Env().DeviceEndpoint)
	cfg.NewHTTPClient, cfg.ProvisioningHost = nil, relayed.addr
	cfg.TLSConfig = f.base.Transport.(*http.Transport).TLSClientConfig
	var polls atomic.Int64
	cfg.OnEvent = func(_ string, ev device.Event) {
		if ev.Step == device.StepPolled {
			polls.Add(1)
		}
	}
	sum, err := fleet.Run(t.Context(), cfg)
	if err != nil || sum.Assigned != 20 {
		t.Fatalf("%+v, %v", sum, err)
	}
	if n := relayed.accepted.Load(); n != 20 || polls.Load() < 20 {
		t.Errorf("%d connections and %d polls for 20 devices, want one connection each and a poll each", n, polls.Load())
	}
	relayed.closed(t)
}
