package cleanup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/internal/retryafter"
)

// RunOptions tune a run.
type RunOptions struct {
	// Concurrency is the most requests in flight to one service; 0 means
	// DefaultConcurrency. The run lowers it while the service throttles.
	Concurrency int
	// RequestTimeout bounds one attempt; 0 means DefaultRequestTimeout. A
	// service that accepts requests and never answers then counts as a
	// fault and is retried, instead of holding the run forever.
	RequestTimeout time.Duration
}

// DefaultRequestTimeout is the default bound of one attempt: DPS answers a
// delete in well under a second, so ten seconds of silence is a fault.
const DefaultRequestTimeout = 10 * time.Second

// DefaultConcurrency is the default ceiling of requests in flight per
// service. The pacer lowers it while the service throttles; where it does
// not, more requests in flight let the service batch its writes (the
// emulator deletes about 1.5 times as fast at 32 as at 16; docs/benchmarks.md).
const DefaultConcurrency = 32

// MaxAttempts bounds the tries of one action against faults (5xx, dropped
// connections). 429s are not faults: a throttled action waits its turn.
const MaxAttempts = 10

// Progress is a snapshot of a running job, sent a few times a second and
// once at the end (Final).
type Progress struct {
	JobID     string
	Total     int // actions in the job
	Done      int // actions settled, including those of earlier runs of the job
	Deleted   int
	Gone      int // already gone (404)
	Changed   int // changed since the scan (412), left alone
	Failed    int // given up in this run; a resumed job tries them again
	Requests  int // requests sent in this run
	Throttled int // of them answered 429
	Faults    int // of them answered 5xx or dropped, and retried
	// Concurrency is the DPS requests-in-flight limit just now; Pace the
	// DPS requests a second it is held to (0 while not throttled).
	Concurrency int
	Pace        float64
	Rate        float64       // actions settled a second, over the last few seconds
	ETA         time.Duration // at Rate; 0 when unknown
	Elapsed     time.Duration
	// Silent is how long DPS has not answered while the run waits on it
	// (a throttling pause does not count): a dead or stalled service shows
	// here, while its requests time out and are retried as Faults.
	Silent time.Duration
	Final  bool
}

// Failure reports an action given up in this run.
type Failure struct {
	Action Action `json:"action"`
	Error  string `json:"error"`
}

// Summary is what a run did.
type Summary struct {
	JobID string `json:"jobId"`
	// Outcomes counts the settled actions of the job per kind and outcome,
	// e.g. Outcomes["record"]["deleted"].
	Outcomes  map[ActionKind]map[Outcome]int `json:"outcomes"`
	Failures  []Failure                      `json:"failures"`
	Requests  int                            `json:"requests"`
	Throttled int                            `json:"throttled"`
	Elapsed   time.Duration                  `json:"elapsedNs"`
}

// Run carries out the pending actions of job: records and hub devices with a
// pool of workers, then groups, each only when none of its records is left.
// Every outcome goes to the job log before Run returns. Cancelling ctx stops
// the run; the job can be resumed later.
func (e *Engine) Run(ctx context.Context, job *Job, opts RunOptions, events chan<- Event) (Summary, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	log, err := job.openLog()
	if err != nil {
		return Summary{}, err
	}
	r := &runner{e: e, job: job, log: log, events: events, conc: opts.Concurrency, timeout: opts.RequestTimeout, start: time.Now(), pacers: map[string]*pacer{}, tally: map[Outcome]int{}}
	r.answered.Store(r.start.UnixNano())
	r.meter = NewMeter(r.start)
	r.pacers[strings.ToLower(e.DPS.Host())] = newPacer(opts.Concurrency, time.Now)
	for _, h := range e.Hubs {
		r.pacers[strings.ToLower(h.Host())] = newPacer(opts.Concurrency, time.Now)
	}
	// A hub device goes only after its record is gone: if the record
	// changed (the device registered again), the device is live and stays.
	records := map[string]int{}
	for n, a := range job.Actions {
		if a.Kind == DeleteRecord {
			records[strings.ToLower(a.ID)] = n
		}
	}
	var todo, groups []int
	follow := map[int]int{} // record action → its hub device action
	for n, a := range job.Actions {
		rec, hasRec := records[strings.ToLower(a.Record)]
		switch {
		case job.outcomes[n].final():
			r.tally[job.outcomes[n]]++
			r.earlier++
		case a.Kind == DeleteGroup:
			groups = append(groups, n)
		case a.Kind == DeleteHubDevice && hasRec && job.outcomes[rec] == OutcomeChanged:
			r.settle(n, OutcomeChanged, recordChanged)
		case a.Kind == DeleteHubDevice && hasRec && !job.outcomes[rec].final():
			follow[rec] = n
		default:
			todo = append(todo, n)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.ctx = ctx
	stopProgress := r.reportProgress(ctx)
	r.work(ctx, cancel, todo, follow)
	if context.Cause(ctx) == nil {
		for _, n := range groups {
			r.deleteGroup(ctx, cancel, n)
		}
	}
	stopProgress()
	logErr := log.Close()
	sum := r.summary()
	send(ctx, events, r.progress(true))
	if cause := context.Cause(ctx); cause != nil {
		return sum, cause
	}
	return sum, logErr
}

type runner struct {
	ctx     context.Context // the run's; ends when it is cancelled or stopped
	e       *Engine
	job     *Job
	log     *outcomeLog
	events  chan<- Event
	conc    int
	timeout time.Duration // of one attempt
	start   time.Time
	pacers  map[string]*pacer

	requests, throttled, faults atomic.Int64
	answered                    atomic.Int64 // unix ns of the last answer from a service (any HTTP status)

	mu       sync.Mutex // guards job.outcomes and what follows
	tally    map[Outcome]int
	earlier  int // actions settled by earlier runs of the job
	failures []Failure
	meter    *Meter // of settled actions, for the rate
}

// recordChanged explains a hub device left alone.
const recordChanged = "its registration record changed since the scan (the device registered again), so the device is live"

// work runs the actions todo (indexes into job.Actions) with conc workers,
// and each action in follow once the record action it follows is deleted.
// An action that meets a fault is retried after a back-off without holding
// a worker; a throttled one goes back to the queue at once (the pacer makes
// it wait).
func (r *runner) work(ctx context.Context, cancel context.CancelCauseFunc, todo []int, follow map[int]int) {
	type task struct{ n, attempt int }
	retry := make(chan task, len(todo)+len(follow))
	var next atomic.Int64
	var open atomic.Int64 // actions neither settled nor given up
	open.Store(int64(len(todo) + len(follow)))
	allDone := make(chan struct{})
	settle := func() {
		if open.Add(-1) == 0 {
			close(allDone)
		}
	}
	if len(todo) == 0 {
		close(allDone)
	}
	giveUp := func(n int, err error) {
		r.giveUp(n, err)
		if _, ok := follow[n]; ok {
			settle() // its hub device waits for a later run
		}
		settle()
	}
	handle := func(t task) {
		a := r.job.Actions[t.n]
		if err := r.log.Err(); err != nil {
			cancel(err)
			return
		}
		c, sent, err := r.send(ctx, a)
		if !sent {
			return
		}
		switch c.kind {
		case ClassDone:
			r.settle(t.n, c.outcome, "")
			if h, ok := follow[t.n]; ok {
				if c.outcome == OutcomeChanged {
					r.settle(h, OutcomeChanged, recordChanged)
					settle()
				} else {
					retry <- task{n: h}
				}
			}
			settle()
		case ClassThrottled:
			retry <- t
		case ClassFault:
			if t.attempt+1 >= MaxAttempts {
				giveUp(t.n, err)
				return
			}
			time.AfterFunc(Backoff(t.attempt), func() { retry <- task{t.n, t.attempt + 1} })
		case ClassFatal:
			if ctx.Err() == nil {
				cancel(fmt.Errorf("cleanup stopped: %s", errorText(a, err)))
			}
		default: // ClassFailed
			giveUp(t.n, err)
		}
	}
	var wg sync.WaitGroup
	for range r.conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				select {
				case t := <-retry:
					handle(t)
					continue
				default:
				}
				if i := next.Add(1) - 1; i < int64(len(todo)) {
					handle(task{n: todo[i]})
					continue
				}
				select {
				case t := <-retry:
					handle(t)
				case <-allDone:
					return
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
}

func (r *runner) pacerFor(a Action) *pacer {
	if a.Kind == DeleteHubDevice {
		if p := r.pacers[strings.ToLower(a.Hub)]; p != nil {
			return p
		}
	}
	return r.pacers[strings.ToLower(r.e.DPS.Host())]
}

// noRetry makes the pipeline hand every answer straight back: the run does
// its own retrying, because it must see each 429 to adapt.
func noRetry(ctx context.Context) context.Context {
	return policy.WithRetryOptions(ctx, policy.RetryOptions{MaxRetries: -1})
}

func (r *runner) do(ctx context.Context, a Action) error {
	return Attempt(ctx, r.timeout, func(ctx context.Context) error { return r.try(ctx, a) })
}

// Attempt makes one try of a request: no retries in the pipeline, and at
// most timeout for the answer. A try that times out says so plainly.
func Attempt(ctx context.Context, timeout time.Duration, try func(context.Context) error) error {
	actx, cancel := context.WithTimeout(noRetry(ctx), timeout)
	defer cancel()
	err := try(actx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", timeout.Round(time.Millisecond))
	}
	return err
}

func (r *runner) try(ctx context.Context, a Action) error {
	switch a.Kind {
	case DeleteRecord:
		return r.e.DPS.DeleteRegistrationState(ctx, a.ID, ifMatch(a.ETag))
	case DeleteHubDevice:
		h := r.e.hub(a.Hub)
		if h == nil {
			return errNoHub
		}
		var opts *hub.DeleteOptions // If-Match: "*"
		if a.ETag != "" {
			etag := azcore.ETag(a.ETag)
			opts = &hub.DeleteOptions{IfMatch: &etag}
		}
		return h.DeleteDevice(ctx, a.ID, opts)
	case DeleteGroup:
		return r.e.DPS.DeleteEnrollmentGroup(ctx, a.ID, ifMatch(a.ETag))
	}
	return fmt.Errorf("unknown action kind %q", a.Kind)
}

var errNoHub = errors.New("no connection string for this hub, so its device cannot be deleted")

func ifMatch(etag string) *dps.WriteOptions {
	if etag == "" {
		return nil
	}
	e := azcore.ETag(etag)
	return &dps.WriteOptions{IfMatch: &e}
}

func (r *runner) settle(n int, o Outcome, errText string) {
	r.mu.Lock()
	r.job.outcomes[n] = o
	if o.final() {
		r.tally[o]++
	}
	r.mu.Unlock()
	r.log.Append(logLine{N: n, Outcome: o, Error: errText})
}

func (r *runner) giveUp(n int, err error) {
	a := r.job.Actions[n]
	text := errorText(a, err)
	r.settle(n, OutcomeFailed, text)
	f := Failure{Action: a, Error: text}
	r.mu.Lock()
	r.failures = append(r.failures, f)
	r.mu.Unlock()
	send(r.ctx, r.events, f)
}

// deleteGroup deletes a group once nothing is left of it: its record actions
// all settled, and DPS lists no record for it any more (a device may have
// registered meanwhile; deleting the group then would orphan that record).
func (r *runner) deleteGroup(ctx context.Context, cancel context.CancelCauseFunc, n int) {
	a := r.job.Actions[n]
	for m, b := range r.job.Actions {
		if b.Kind == DeleteRecord && b.GroupID == a.ID && !r.job.outcomes[m].final() {
			r.giveUp(n, errors.New("kept: some of its registration records were not deleted"))
			return
		}
	}
	pager := r.e.DPS.NewRegistrationStatePager(a.ID, &dps.PagerOptions{PageSize: 1})
	page, err := pager.NextPage(ctx)
	if err != nil {
		r.giveUp(n, err)
		return
	}
	if len(page.Items) > 0 {
		r.giveUp(n, fmt.Errorf("kept: registration record %q appeared after the scan; run the deletion again", page.Items[0].RegistrationID))
		return
	}
	for attempt := 0; ctx.Err() == nil; {
		c, sent, err := r.send(ctx, a)
		if !sent {
			return
		}
		switch c.kind {
		case ClassDone:
			r.settle(n, c.outcome, "")
			r.journalDeleted(a.ID)
			return
		case ClassThrottled:
		case ClassFault:
			if attempt++; attempt >= MaxAttempts {
				r.giveUp(n, err)
				return
			}
			sleep(ctx, Backoff(attempt))
		case ClassFatal:
			cancel(fmt.Errorf("cleanup stopped: %s", errorText(a, err)))
			return
		default:
			r.giveUp(n, err)
			return
		}
	}
}

// send makes one attempt at a through its service's pacer: it waits for a
// slot, sends, counts the request, and tells the pacer how it went. sent is
// false when the run ended before a slot came free.
func (r *runner) send(ctx context.Context, a Action) (c classification, sent bool, err error) {
	p := r.pacerFor(a)
	at, err := p.acquire(ctx)
	if err != nil {
		return c, false, nil
	}
	err = r.do(ctx, a)
	r.requests.Add(1)
	if Answered(err) {
		r.answered.Store(time.Now().UnixNano())
	}
	c = classify(err)
	switch c.kind {
	case ClassDone:
		p.release(at, resultOK, 0)
	case ClassThrottled:
		r.throttled.Add(1)
		p.release(at, resultThrottled, c.retryAfter)
	case ClassFault:
		r.faults.Add(1)
		p.release(at, resultOther, 0)
	default:
		p.release(at, resultOther, 0)
	}
	return c, true, err
}

// journalDeleted notes a group the run deleted in the known-groups journal,
// so later scans look for records that reappear under it.
func (r *runner) journalDeleted(id string) {
	j, err := OpenJournal(r.e.StateDir, r.e.DPS.Host())
	if err == nil {
		err = j.Deleted(id)
	}
	if err != nil {
		r.mu.Lock()
		r.failures = append(r.failures, Failure{Action: Action{Kind: DeleteGroup, ID: id}, Error: "the group is deleted, but the known-groups journal could not record it: " + err.Error()})
		r.mu.Unlock()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Backoff is the wait before retry attempt+1 after a fault: exponential from
// 50 ms, at most 2 s, with jitter so retries do not arrive together.
func Backoff(attempt int) time.Duration {
	d := min(50*time.Millisecond<<min(attempt, 6), 2*time.Second)
	return d/2 + rand.N(d/2+1)
}

// Answered reports whether a request got an HTTP answer, whatever its
// status; a refused, dropped or timed-out request did not.
func Answered(err error) bool {
	var re *azcore.ResponseError
	return err == nil || errors.As(err, &re)
}

// Class is how a run treats the answer to a delete.
type Class int

const (
	ClassDone      Class = iota // settled: deleted, gone or changed
	ClassThrottled              // 429: wait and send again
	ClassFault                  // 5xx, 408 or a dropped connection: retry with back-off
	ClassFatal                  // 401/403: every request would fail alike, stop the run
	ClassFailed                 // any other error: give this action up
)

type classification struct {
	kind       Class
	outcome    Outcome
	retryAfter time.Duration
}

// Classify tells how a run treats err from a delete, and for a 429 how long
// the service asked to wait; the console's record deletion shares it.
func Classify(err error) (Class, time.Duration) {
	c := classify(err)
	return c.kind, c.retryAfter
}

func classify(err error) classification {
	if err == nil {
		return classification{kind: ClassDone, outcome: OutcomeDeleted}
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		if errors.Is(err, errNoHub) {
			return classification{kind: ClassFailed}
		}
		return classification{kind: ClassFault} // transport: dropped, reset, timed out
	}
	switch s := re.StatusCode; {
	case s == http.StatusNotFound:
		return classification{kind: ClassDone, outcome: OutcomeGone}
	case s == http.StatusPreconditionFailed:
		return classification{kind: ClassDone, outcome: OutcomeChanged}
	case s == http.StatusTooManyRequests:
		return classification{kind: ClassThrottled, retryAfter: retryafter.Response(re.RawResponse, time.Now())}
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		return classification{kind: ClassFatal}
	case s == http.StatusRequestTimeout, s >= 500:
		return classification{kind: ClassFault}
	}
	return classification{kind: ClassFailed}
}

// errorText says in one line what failed, without secrets.
func errorText(a Action, err error) string {
	what := map[ActionKind]string{DeleteRecord: "registration record", DeleteHubDevice: "device on " + a.Hub, DeleteGroup: "enrollment group"}[a.Kind]
	msg := err.Error()
	var re *azcore.ResponseError
	if errors.As(err, &re) && a.Kind != DeleteHubDevice {
		msg = dps.ErrorMessage(err)
	}
	return fmt.Sprintf("delete %s %q: %s", what, a.ID, msg)
}

// reportProgress sends Progress four times a second until stopped.
func (r *runner) reportProgress(ctx context.Context) (stop func()) {
	if r.events == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				send(ctx, r.events, r.progress(false))
			case <-quit:
				return
			case <-ctx.Done():
				return
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// progress takes a snapshot.
func (r *runner) progress(final bool) Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	p := Progress{
		JobID: r.job.ID, Total: len(r.job.Actions), Final: final, Elapsed: now.Sub(r.start),
		Deleted: r.tally[OutcomeDeleted], Gone: r.tally[OutcomeGone], Changed: r.tally[OutcomeChanged], Failed: len(r.failures),
		Requests: int(r.requests.Load()), Throttled: int(r.throttled.Load()), Faults: int(r.faults.Load()),
	}
	p.Done = p.Deleted + p.Gone + p.Changed
	dpsPacer := r.pacers[strings.ToLower(r.e.DPS.Host())]
	p.Concurrency, p.Pace = dpsPacer.state()
	if !final {
		// Waiting out a Retry-After is not silence: count from its end.
		quiet := later(time.Unix(0, r.answered.Load()), dpsPacer.pausedUntil())
		p.Silent = max(now.Sub(quiet), 0)
	}

	p.Rate = r.meter.Rate(now, p.Done-r.earlier+p.Failed)
	if !final {
		p.ETA = ETA(p.Total-p.Done-p.Failed, p.Rate)
	}
	return p
}

// Meter measures how many things a second get settled, over the last few
// seconds, from the first sample on.
type Meter struct {
	start   time.Time
	samples []sample // recent (time, settled) pairs
}

type sample struct {
	t       time.Time
	settled int
}

// rateWindow is how far back a Meter looks.
const rateWindow = 5 * time.Second

// NewMeter starts measuring at start.
func NewMeter(start time.Time) *Meter { return &Meter{start: start} }

// Rate notes that settled things are done at now and returns the rate.
// Until two samples exist it is the average since the start, so the first
// report already has one.
func (m *Meter) Rate(now time.Time, settled int) float64 {
	m.samples = append(m.samples, sample{now, settled})
	for len(m.samples) > 2 && now.Sub(m.samples[1].t) >= rateWindow {
		m.samples = m.samples[1:]
	}
	if first := m.samples[0]; now.Sub(first.t) > 0 && len(m.samples) > 1 {
		return float64(settled-first.settled) / now.Sub(first.t).Seconds()
	}
	if d := now.Sub(m.start); d > 0 {
		return float64(settled) / d.Seconds()
	}
	return 0
}

// ETA is the time left for left things at rate a second; 0 when unknown.
func ETA(left int, rate float64) time.Duration {
	if rate <= 0 || left <= 0 {
		return 0
	}
	return time.Duration(float64(left) / rate * float64(time.Second))
}

func (r *runner) summary() Summary {
	s := Summary{JobID: r.job.ID, Outcomes: map[ActionKind]map[Outcome]int{}, Elapsed: time.Since(r.start),
		Requests: int(r.requests.Load()), Throttled: int(r.throttled.Load())}
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, a := range r.job.Actions {
		o := r.job.outcomes[n]
		if o == "" {
			continue
		}
		if s.Outcomes[a.Kind] == nil {
			s.Outcomes[a.Kind] = map[Outcome]int{}
		}
		s.Outcomes[a.Kind][o]++
	}
	s.Failures = append([]Failure{}, r.failures...)
	return s
}
