package fleet

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/device"
)

// Live is a run's feed for a live dashboard: pass one in Config.Live and
// read Board at the dashboard's own frame rate, from any goroutine. It
// keeps the steps of the devices in flight and, once they finish, only
// those of the slowest and of the first failed ones, so its memory does
// not grow with the fleet.
type Live struct {
	mu      sync.Mutex
	t       *tally
	spec    Spec
	start   time.Time
	flying  map[string][]TraceEvent
	slowest []DeviceTrace // by latency, slowest first
	failed  []DeviceTrace // in the order they failed
	series  [SeriesLen]secondCount
}

// SeriesLen is how many seconds of rate Board keeps.
const SeriesLen = 120

// Kept traces: enough for a screen of each table.
const (
	keptSlowest = 50
	keptFailed  = 200
)

type secondCount struct {
	sec             int64 // seconds since the run's start, +1 (0 = unused)
	done, throttled int
}

// NewLive returns a feed to pass in Config.Live.
func NewLive() *Live { return &Live{flying: map[string][]TraceEvent{}} }

// TraceEvent is one step of a device's registration, as the dashboard
// shows it: what happened and when.
type TraceEvent struct {
	At   time.Time
	What string
	Err  bool
}

// DeviceTrace is one finished device: its outcome and its steps.
type DeviceTrace struct {
	ID        string
	Outcome   Outcome
	Hub       string
	Error     string
	Latency   time.Duration
	Throttled int // 429s its requests got
	Events    []TraceEvent
}

// Bucket is one bar of the latency histogram: devices whose registration
// took from Lower up to Upper.
type Bucket struct {
	Lower, Upper time.Duration
	Count        int
}

// Board is everything a dashboard draws, read at once.
type Board struct {
	Snapshot
	// PerSecond is devices finished in each of the last seconds, oldest
	// first, the current (partial) second last; Throttles likewise 429s.
	PerSecond, Throttles []int
	Histogram            []Bucket // of assigned devices, HistogramBars bars
	ByStatus             []StatusCount
	ByHub                []HubCount
	ThrottleWait         time.Duration
	MaxRetryAfter        time.Duration
	// Slowest are the slowest assigned devices, slowest first; NotAssigned
	// the first devices that were not (Snapshot.Failed counts them all).
	Slowest, NotAssigned []DeviceTrace
}

// HistogramBars is how many bars Board's histogram has.
const HistogramBars = 24

// attach wires the feed into run e: device steps and outcomes reach it.
func (l *Live) attach(e *engine) {
	l.mu.Lock()
	l.t, l.spec, l.start = e.tally, e.cfg.Spec, e.start
	l.mu.Unlock()
	next := e.cfg.OnEvent
	e.cfg.OnEvent = func(id string, ev device.Event) {
		l.step(id, ev)
		if next != nil {
			next(id, ev)
		}
	}
	e.tally.mu.Lock()
	e.tally.live = l
	e.tally.mu.Unlock()
}

// step records one step of a device in flight.
func (l *Live) step(id string, ev device.Event) {
	te := TraceEvent{At: ev.Time, What: describeStep(ev), Err: ev.Step == device.StepError}
	if te.At.IsZero() {
		te.At = time.Now()
	}
	l.mu.Lock()
	l.flying[id] = append(l.flying[id], te)
	l.mu.Unlock()
}

func describeStep(ev device.Event) string {
	s := string(ev.Step)
	switch {
	case ev.HTTPStatus == 429:
		s += " — throttled (429), retry after " + ev.RetryAfter.String()
	case ev.Step == device.StepPollWait:
		s += ", waiting " + ev.RetryAfter.String()
	case ev.Status != "":
		s += ": " + string(ev.Status)
	case ev.HTTPStatus != 0:
		s += " (" + itoa(ev.HTTPStatus) + ")"
	}
	if ev.Poll > 0 && (ev.Step == device.StepPollSent || ev.Step == device.StepPolled) {
		s += " #" + itoa(ev.Poll)
	}
	if ev.Err != nil {
		s += ": " + ev.Err.Error()
	}
	return s
}

// finished moves a device that got its outcome (logged line ln) out of
// flight; called by the tally, under its lock. A device an earlier part of
// a resumed run finished (thisRun false) is kept the same way, so the
// tables show the whole run, but is not counted in the rate of this one;
// its log line holds its outcome, not its steps.
func (l *Live) finished(ln logLine, now time.Time, thisRun bool) {
	id := l.spec.RegistrationID(ln.N)
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.flying[id]
	if thisRun {
		l.second(now).done++
	} else {
		evs = []TraceEvent{{At: now, What: "finished before the run was resumed (its log keeps the outcome, not the steps)"}}
	}
	delete(l.flying, id)
	tr := DeviceTrace{ID: id, Outcome: ln.Outcome, Hub: ln.Hub, Error: ln.Error,
		Latency: time.Duration(ln.Millis) * time.Millisecond, Throttled: ln.Throttled}
	if ln.Outcome != OutcomeAssigned {
		if len(l.failed) < keptFailed {
			tr.Events = l.endOf(evs, tr, now)
			l.failed = append(l.failed, tr)
		}
		return
	}
	n := len(l.slowest)
	if n == keptSlowest && tr.Latency <= l.slowest[n-1].Latency {
		return
	}
	tr.Events = l.endOf(evs, tr, now)
	i, _ := slices.BinarySearchFunc(l.slowest, tr, func(a, b DeviceTrace) int { return cmp.Compare(b.Latency, a.Latency) })
	l.slowest = slices.Insert(l.slowest, i, tr)[:min(n+1, keptSlowest)]
}

// endOf closes a device's steps with its outcome.
func (l *Live) endOf(evs []TraceEvent, tr DeviceTrace, now time.Time) []TraceEvent {
	if tr.Throttled > 0 {
		evs = append(evs, TraceEvent{At: now, What: "throttled " + itoa(tr.Throttled) + "× (429) on the way"})
	}
	end := TraceEvent{At: now, What: string(tr.Outcome)}
	if tr.Outcome == OutcomeAssigned {
		end.What += " to " + tr.Hub
	} else {
		end.What += ": " + tr.Error
		end.Err = true
	}
	return append(evs, end)
}

func (l *Live) throttled(now time.Time) {
	l.mu.Lock()
	l.second(now).throttled++
	l.mu.Unlock()
}

// second is the count of the second now falls in (l.mu held).
func (l *Live) second(now time.Time) *secondCount {
	sec := int64(now.Sub(l.start)/time.Second) + 1
	c := &l.series[sec%SeriesLen]
	if c.sec != sec {
		*c = secondCount{sec: sec}
	}
	return c
}

// Board reads the run's state now; before the run starts it is empty.
func (l *Live) Board() Board {
	l.mu.Lock()
	t, start := l.t, l.start
	l.mu.Unlock()
	if t == nil {
		return Board{}
	}
	now := time.Now()
	var b Board
	var hist histogram
	t.mu.Lock()
	b.Snapshot = Snapshot{Total: t.total, Done: t.done, InFlight: t.inFlight, Assigned: t.assigned, Failed: t.failed,
		Throttled: t.throttled, Elapsed: now.Sub(start), Latency: t.latency()}
	b.ThrottleWait, b.MaxRetryAfter = t.wait, t.maxWait
	for k, n := range t.status {
		k.Count = n
		b.ByStatus = append(b.ByStatus, k)
	}
	for h, n := range t.hubs {
		b.ByHub = append(b.ByHub, HubCount{Hub: h, Count: n})
	}
	hist = t.lat // 10 KB copied, ten times a second: cheaper than binning under the lock
	t.mu.Unlock()
	slices.SortFunc(b.ByStatus, func(a, b StatusCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Status, b.Status), cmp.Compare(a.Substatus, b.Substatus))
	})
	slices.SortFunc(b.ByHub, func(a, b HubCount) int { return cmp.Compare(a.Hub, b.Hub) })
	b.Histogram = bars(&hist, HistogramBars)

	l.mu.Lock()
	cur := int64(now.Sub(start)/time.Second) + 1
	n := int(min(cur, SeriesLen))
	b.PerSecond, b.Throttles = make([]int, n), make([]int, n)
	for i := range n {
		sec := cur - int64(n-1-i)
		if c := l.series[sec%SeriesLen]; c.sec == sec {
			b.PerSecond[i], b.Throttles[i] = c.done, c.throttled
		}
	}
	b.Slowest = slices.Clone(l.slowest)
	b.NotAssigned = slices.Clone(l.failed)
	l.mu.Unlock()
	// The rate over the last complete seconds (up to 5).
	if k := min(n-1, 5); k > 0 {
		sum := 0
		for _, v := range b.PerSecond[n-1-k : n-1] {
			sum += v
		}
		b.Rate = float64(sum) / float64(k)
	} else if e := b.Elapsed.Seconds(); e > 0 {
		b.Rate = float64(b.PerSecond[n-1]) / e
	}
	if b.Rate > 0 && b.Done < b.Total {
		b.ETA = seconds(float64(b.Total-b.Done) / b.Rate)
	}
	return b
}

// bars bins a histogram into n bars between its fastest and slowest
// sample, on a log scale (latencies spread over orders of magnitude).
func bars(h *histogram, n int) []Bucket {
	if h.n == 0 {
		return nil
	}
	first, last := -1, 0
	for i, c := range h.counts {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	span := last - first + 1
	out := make([]Bucket, min(n, span))
	for i := range out {
		lo := first + i*span/len(out)
		hi := first + (i+1)*span/len(out)
		out[i].Lower = lowerBound(lo)
		out[i].Upper = min(lowerBound(hi), h.max)
		for _, c := range h.counts[lo:hi] {
			out[i].Count += int(c)
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// Feed drives a Live without DPS, through the same tally a run counts in:
// for a dashboard's benchmarks and tests. A Feed is safe for concurrent use.
type Feed struct {
	t    *tally
	live *Live
	spec Spec
}

// NewFeed returns a feed for a run of spec and the Live it drives.
func NewFeed(spec Spec) (*Live, *Feed) {
	l := NewLive()
	t := newTally(spec.Count, spec.RegistrationID)
	l.t, l.spec, l.start = t, spec, time.Now()
	t.live = l
	return l, &Feed{t: t, live: l, spec: spec}
}

// Step reports one step of device i, as the device client reports it.
func (f *Feed) Step(i int, ev device.Event) { f.live.step(f.spec.RegistrationID(i), ev) }

// Assigned reports device i assigned to hub after latency.
func (f *Feed) Assigned(i int, hub string, latency time.Duration) {
	f.t.add(logLine{N: i, Outcome: OutcomeAssigned, Hub: hub, Substatus: "initialAssignment", Millis: latency.Milliseconds()}, true)
}

// NotAssigned reports device i ended with outcome o and error text.
func (f *Feed) NotAssigned(i int, o Outcome, text string) {
	f.t.add(logLine{N: i, Outcome: o, Error: text}, true)
}

// Throttled reports a 429 with its Retry-After.
func (f *Feed) Throttled(retryAfter time.Duration) { f.t.throttle(retryAfter) }
