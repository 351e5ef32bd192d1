package fleet

import (
	"cmp"
	"math/bits"
	"slices"
	"sync"
	"time"
)

// histogram counts latencies in log-linear buckets: 64 per power of two of
// microseconds, so a percentile is within 1.6 % whatever the fleet's size,
// in 20 KB.
type histogram struct {
	counts [40 * 64]uint32
	n      int
	max    time.Duration
}

func bucketOf(d time.Duration) int {
	v := uint64(max(d.Microseconds(), 0))
	if v < 128 {
		return int(v)
	}
	e := bits.Len64(v) - 7 // v>>e is in [64,128)
	return min((e+1)*64+int(v>>e)-64, len(histogram{}.counts)-1)
}

// lowerBound is the smallest latency of bucket i.
func lowerBound(i int) time.Duration {
	if i < 128 {
		return time.Duration(i) * time.Microsecond
	}
	e := i/64 - 1
	return time.Duration(uint64(i%64+64)<<e) * time.Microsecond
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
	h.max = max(h.max, d)
}

// quantile is the latency below which a fraction q of the samples lie.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint32(q*float64(h.n-1)) + 1
	if int(rank) >= h.n {
		return h.max
	}
	var seen uint32
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(lowerBound(i), h.max)
		}
	}
	return h.max
}

// Latency is a set of registration latency percentiles.
type Latency struct {
	P50 time.Duration `json:"p50"`
	P95 time.Duration `json:"p95"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
}

// Snapshot is the live state of a run, for a progress line.
type Snapshot struct {
	Total     int           // devices in the run
	Done      int           // devices with a final outcome or a refusal, earlier runs included
	InFlight  int           // devices registering now
	Assigned  int           // assigned, earlier runs included
	Failed    int           // failed, disabled, refused or lost
	Throttled int           // 429 answers in this run
	Rate      float64       // devices finished a second, over the last few seconds
	ETA       time.Duration // 0 when unknown
	Elapsed   time.Duration
	Latency   Latency
}

// StatusCount is how many devices ended with a status and substatus.
type StatusCount struct {
	Status    string `json:"status"`
	Substatus string `json:"substatus,omitempty"`
	Count     int    `json:"count"`
}

// HubCount is how many devices were assigned to one hub.
type HubCount struct {
	Hub   string `json:"hub"`
	Count int    `json:"count"`
}

// FailureGroup is devices that failed with the same error.
type FailureGroup struct {
	Error    string   `json:"error"`
	Count    int      `json:"count"`
	Examples []string `json:"examples"` // a few of their registration IDs
}

// Summary is the result of a run (with what earlier runs of it did).
type Summary struct {
	Run           string         `json:"run"`
	Total         int            `json:"total"`
	Finished      int            `json:"finished"`    // devices with an outcome
	ThisRun       int            `json:"finishedNow"` // of them, in this process
	Pending       int            `json:"pending"`     // not registered (yet): resume to do them
	Interrupted   bool           `json:"interrupted"` // the run was stopped before the end
	Assigned      int            `json:"assigned"`
	Failed        int            `json:"failed"` // everything but assigned
	ByStatus      []StatusCount  `json:"byStatus"`
	ByHub         []HubCount     `json:"byHub"`
	Latency       Latency        `json:"-"`         // durations: a JSON form picks its unit
	Throttled     int            `json:"throttled"` // 429 answers
	ThrottleWait  time.Duration  `json:"-"`         // their Retry-After, summed
	MaxRetryAfter time.Duration  `json:"-"`         // the longest one
	Failures      []FailureGroup `json:"failures"`
	Elapsed       time.Duration  `json:"-"`
	Schedule      string         `json:"schedule"`
	// Telemetry messages sent in this run, and the devices whose telemetry
	// stopped on an error (the first such error as an example).
	TelemetrySent    int    `json:"telemetrySent"`
	TelemetryFailed  int    `json:"telemetryFailed"`
	TelemetryFailure string `json:"telemetryFailure,omitempty"`
}

const maxExamples = 3

// tally is the counters of a run, shared by every device goroutine.
type tally struct {
	mu        sync.Mutex
	total     int
	done      int
	thisRun   int
	inFlight  int
	assigned  int
	failed    int
	throttled int
	wait      time.Duration
	maxWait   time.Duration
	status    map[StatusCount]int // Count unused in the key
	hubs      map[string]int
	failures  map[string]*failures
	idOf      func(int) string
	lat       histogram // of assigned devices
	telSent   int
	telFailed int
	telError  string
	samples   [8]sample // ring of (time, done) for the recent rate
	nsamples  int
	live      *Live // a dashboard's feed, when one watches
}

// failures is one error's count and its lowest device numbers.
type failures struct {
	count int
	ns    []int
}

type sample struct {
	at   time.Time
	done int
}

func newTally(total int, idOf func(int) string) *tally {
	return &tally{total: total, idOf: idOf, status: map[StatusCount]int{}, hubs: map[string]int{}, failures: map[string]*failures{}}
}

// add counts one logged line with an outcome.
func (t *tally) add(l logLine, now bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done++
	if now {
		t.thisRun++
	}
	if t.live != nil {
		t.live.finished(l, time.Now(), now)
	}
	t.status[StatusCount{Status: string(l.Outcome), Substatus: l.Substatus}]++
	if l.Outcome == OutcomeAssigned {
		t.assigned++
		t.hubs[l.Hub]++
		if l.Millis > 0 {
			t.lat.add(time.Duration(l.Millis) * time.Millisecond)
		}
		return
	}
	t.failed++
	g := t.failures[l.Error]
	if g == nil {
		g = &failures{}
		t.failures[l.Error] = g
	}
	g.count++
	// Keep the lowest device numbers: devices finish in any order.
	if i, _ := slices.BinarySearch(g.ns, l.N); i < maxExamples {
		g.ns = slices.Insert(g.ns, i, l.N)[:min(len(g.ns)+1, maxExamples)]
	}
}

func (t *tally) throttle(retryAfter time.Duration) {
	t.mu.Lock()
	t.throttled++
	t.wait += retryAfter
	t.maxWait = max(t.maxWait, retryAfter)
	if t.live != nil {
		t.live.throttled(time.Now())
	}
	t.mu.Unlock()
}

func (t *tally) telemetrySent() {
	t.mu.Lock()
	t.telSent++
	t.mu.Unlock()
}

func (t *tally) telemetryFailed(msg string) {
	t.mu.Lock()
	t.telFailed++
	if t.telError == "" {
		t.telError = msg
	}
	t.mu.Unlock()
}

func (t *tally) flight(delta int) {
	t.mu.Lock()
	t.inFlight += delta
	t.mu.Unlock()
}

func (t *tally) latency() Latency {
	return Latency{P50: t.lat.quantile(.50), P95: t.lat.quantile(.95), P99: t.lat.quantile(.99), Max: t.lat.max}
}

// snapshot reads the counters; the recent rate is over the samples taken by
// earlier snapshots (progress is drawn at a fixed rate).
func (t *tally) snapshot(now time.Time, elapsed time.Duration) Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Snapshot{Total: t.total, Done: t.done, InFlight: t.inFlight, Assigned: t.assigned, Failed: t.failed,
		Throttled: t.throttled, Elapsed: elapsed, Latency: t.latency()}
	oldest := sample{at: now.Add(-elapsed), done: t.done - t.thisRun}
	if t.nsamples >= len(t.samples) {
		oldest = t.samples[t.nsamples%len(t.samples)]
	}
	if span := now.Sub(oldest.at).Seconds(); span > 0 {
		s.Rate = float64(t.done-oldest.done) / span
	}
	if s.Rate > 0 {
		s.ETA = seconds(float64(t.total-t.done) / s.Rate)
	}
	t.samples[t.nsamples%len(t.samples)] = sample{at: now, done: t.done}
	t.nsamples++
	return s
}

func (t *tally) summary(id string, elapsed time.Duration) Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Summary{Run: id, Total: t.total, Finished: t.done, ThisRun: t.thisRun, Pending: t.total - t.done,
		Assigned: t.assigned, Failed: t.failed, Latency: t.latency(), Throttled: t.throttled,
		ThrottleWait: t.wait, MaxRetryAfter: t.maxWait, Elapsed: elapsed,
		ByStatus: []StatusCount{}, ByHub: []HubCount{}, Failures: []FailureGroup{},
		TelemetrySent: t.telSent, TelemetryFailed: t.telFailed, TelemetryFailure: t.telError}
	for k, n := range t.status {
		k.Count = n
		s.ByStatus = append(s.ByStatus, k)
	}
	slices.SortFunc(s.ByStatus, func(a, b StatusCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Status, b.Status), cmp.Compare(a.Substatus, b.Substatus))
	})
	for h, n := range t.hubs {
		s.ByHub = append(s.ByHub, HubCount{Hub: h, Count: n})
	}
	slices.SortFunc(s.ByHub, func(a, b HubCount) int { return cmp.Compare(a.Hub, b.Hub) })
	for e, g := range t.failures {
		fg := FailureGroup{Error: e, Count: g.count}
		for _, n := range g.ns {
			fg.Examples = append(fg.Examples, t.idOf(n))
		}
		s.Failures = append(s.Failures, fg)
	}
	slices.SortFunc(s.Failures, func(a, b FailureGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Error, b.Error))
	})
	return s
}
