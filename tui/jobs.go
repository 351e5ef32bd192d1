package tui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/bubbles/v2/progress"
	tea "charm.land/bubbletea/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// recordPageSize is the page size for registration-record queries: large
// enough to count a big group quickly, small enough for a fast first page.
const recordPageSize = 1000

// countRecords counts a group's registration records, stopping at limit
// (0 = no limit); more reports that it stopped early.
func countRecords(ctx context.Context, svc *dps.Client, groupID string, limit int) (n int, more bool, err error) {
	pager := svc.NewRegistrationStatePager(groupID, &dps.PagerOptions{PageSize: recordPageSize})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return n, false, err
		}
		n += len(page.Items)
		if limit > 0 && n >= limit && page.ContinuationToken != "" {
			return n, true, nil
		}
	}
	return n, false, nil
}

// recordSource is what deleting registration records needs of *dps.Client.
type recordSource interface {
	NewRegistrationStatePager(groupID string, opts *dps.PagerOptions) *runtime.Pager[dps.RegistrationStatePage]
	DeleteRegistrationState(ctx context.Context, id string, opts *dps.WriteOptions) error
}

// deleteProgress is a snapshot of a deletion of registration records, sent
// four times a second from its start; the last one has done set and carries
// every failure.
type deleteProgress struct {
	ch              <-chan deleteProgress
	deleted, failed int
	total           int // expected; grows if the listing finds more
	retries         int // attempts that met a fault and went again
	rate            float64
	eta, elapsed    time.Duration
	silent          time.Duration // DPS has not answered for this long
	firstErr        error         // the first failure, or the listing's error
	failures        []string      // every failure in full (on the last one)
	gone            map[string]bool
	stopped         bool // the operator stopped it
	done            bool
}

// deleteWorkers bounds concurrent deletes.
const deleteWorkers = 4

// requestTimeout bounds one delete attempt (tests shorten it): a DPS that
// accepts and never answers must not hold the deletion forever.
var requestTimeout = cleanup.DefaultRequestTimeout

// startDeleteRecords deletes the given records (or, with ids nil, every
// record of groupID except skip, listed page by page while the first pages
// are already being deleted) in a goroutine and streams progress; total is
// the number expected (0 = unknown). Cancelling ctx stops it. The goroutine
// starts when the Cmd runs, not in Update.
func startDeleteRecords(ctx context.Context, to int, svc recordSource, groupID string, ids []string, skip map[string]bool, total int) tea.Cmd {
	return do(to, func() tea.Msg {
		ch := make(chan deleteProgress, 16)
		d := &deleter{svc: svc, ch: ch, start: time.Now(), gone: map[string]bool{}}
		d.meter = cleanup.NewMeter(d.start)
		d.answered.Store(d.start.UnixNano())
		if ids != nil {
			total = len(ids)
		}
		d.total.Store(int64(total))
		go d.run(ctx, groupID, ids, skip)
		return <-ch
	})
}

// deleter is one running deletion of records.
type deleter struct {
	svc   recordSource
	ch    chan deleteProgress
	start time.Time
	meter *cleanup.Meter // used by the reporting goroutine only

	total, listed            atomic.Int64
	deleted, failed, retries atomic.Int64
	answered, pausedUntil    atomic.Int64 // unix ns
	mu                       sync.Mutex
	failures                 []string
	firstErr                 error
	gone                     map[string]bool
}

func (d *deleter) run(parent context.Context, groupID string, ids []string, skip map[string]bool) {
	defer close(d.ch)
	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	work := make(chan string)
	go func() {
		defer close(work)
		if err := d.feed(ctx, work, groupID, ids, skip); err != nil && ctx.Err() == nil {
			d.fail(fmt.Sprintf("listing the records of %s: %s", groupID, describe(err)), err)
		}
	}()
	var wg sync.WaitGroup
	for range deleteWorkers {
		wg.Go(func() {
			for id := range work {
				if err := d.delete(ctx, id); err != nil {
					stop(err) // every request would fail alike
				}
			}
		})
	}
	ticks := time.NewTicker(250 * time.Millisecond)
	defer ticks.Stop()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for running := true; running; {
		select {
		case <-ticks.C:
			// Reports never block and always leave room for the final one,
			// so the goroutine ends even when its view was closed.
			if len(d.ch) < cap(d.ch)-1 {
				d.ch <- d.snapshot(false)
			}
		case <-finished:
			running = false
		}
	}
	p := d.snapshot(true)
	p.stopped = parent.Err() != nil
	d.ch <- p
}

// feed sends the ids to delete to the workers: the given ones, or the
// group's records page by page, so the first deletes go out as soon as the
// first page is in.
func (d *deleter) feed(ctx context.Context, work chan<- string, groupID string, ids []string, skip map[string]bool) error {
	send := func(id string) bool {
		select {
		case work <- id:
			d.listed.Add(1)
			return true
		case <-ctx.Done():
			return false
		}
	}
	if ids != nil {
		for _, id := range ids {
			if !send(id) {
				return nil
			}
		}
		return nil
	}
	pager := d.svc.NewRegistrationStatePager(groupID, &dps.PagerOptions{PageSize: recordPageSize})
	for pager.More() {
		pctx, cancel := context.WithTimeout(ctx, 3*requestTimeout)
		page, err := pager.NextPage(pctx)
		cancel()
		if err != nil {
			return err
		}
		d.answered.Store(time.Now().UnixNano())
		for _, r := range page.Items {
			if !skip[r.RegistrationID] && !send(r.RegistrationID) {
				return nil
			}
		}
	}
	d.total.Store(d.listed.Load()) // now exact
	return nil
}

// delete deletes one record, retrying faults and throttling as the clean-up
// engine does. It returns an error only when the deletion must stop.
func (d *deleter) delete(ctx context.Context, id string) error {
	for attempt := 0; ; {
		err := cleanup.Attempt(ctx, requestTimeout, func(ctx context.Context) error { return d.svc.DeleteRegistrationState(ctx, id, nil) })
		if ctx.Err() != nil {
			return nil // stopped: neither deleted nor failed
		}
		if cleanup.Answered(err) {
			d.answered.Store(time.Now().UnixNano())
		}
		class, wait := cleanup.Classify(err)
		switch class {
		case cleanup.ClassDone:
			d.deleted.Add(1)
			d.mu.Lock()
			d.gone[id] = true
			d.mu.Unlock()
			return nil
		case cleanup.ClassThrottled:
			wait = max(wait, time.Second)
			d.pausedUntil.Store(time.Now().Add(wait).UnixNano())
		case cleanup.ClassFault:
			if attempt++; attempt >= cleanup.MaxAttempts {
				d.fail(fmt.Sprintf("%s: %s (gave up after %d attempts)", id, describe(err), attempt), err)
				return nil
			}
			d.retries.Add(1)
			wait = cleanup.Backoff(attempt)
		case cleanup.ClassFatal:
			d.fail(fmt.Sprintf("%s: %s", id, describe(err)), err)
			return err
		default:
			d.fail(fmt.Sprintf("%s: %s", id, describe(err)), err)
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
}

func (d *deleter) fail(text string, err error) {
	d.failed.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failures = append(d.failures, text)
	if d.firstErr == nil {
		d.firstErr = err
	}
}

// describe is an error for a person; a page that timed out says so plainly.
func describe(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", 3*requestTimeout)
	}
	return dps.ErrorMessage(err)
}

func (d *deleter) snapshot(final bool) deleteProgress {
	now := time.Now()
	p := deleteProgress{ch: d.ch, deleted: int(d.deleted.Load()), failed: int(d.failed.Load()),
		total: int(max(d.total.Load(), d.listed.Load())), retries: int(d.retries.Load()), elapsed: now.Sub(d.start), done: final}
	p.rate = d.meter.Rate(now, p.deleted+p.failed)
	if final {
		d.mu.Lock()
		p.failures, p.firstErr, p.gone = d.failures, d.firstErr, d.gone
		d.mu.Unlock()
		return p
	}
	p.eta = cleanup.ETA(p.total-p.deleted-p.failed, p.rate)
	quiet := max(d.answered.Load(), d.pausedUntil.Load())
	p.silent = max(now.Sub(time.Unix(0, quiet)), 0)
	return p
}

func listenDelete(to int, ch <-chan deleteProgress) tea.Cmd {
	return do(to, func() tea.Msg {
		p, ok := <-ch
		if !ok {
			return deleteProgress{done: true}
		}
		return p
	})
}

// silentAfter is how long DPS may be silent before the view says so: longer
// than any answer of a healthy DPS, short enough not to look stalled.
const silentAfter = 2 * time.Second

// rateLine is a deletion's rate, ETA (while it runs) and elapsed time.
func rateLine(rate float64, eta, elapsed time.Duration, running bool) string {
	s := fmt.Sprintf("  %s deletes/s", theme.Count(int(rate+0.5)))
	if eta > 0 && running {
		s += "  ETA " + eta.Round(time.Second).String()
	}
	return s + "  elapsed " + elapsed.Round(100*time.Millisecond).String()
}

// silenceLine says that DPS stopped answering, with the live failure
// counts, or is "" while it answers.
func silenceLine(c *Common, silent time.Duration, retries, failed int) string {
	if silent < silentAfter {
		return ""
	}
	return c.Styles.Warning.Render(fmt.Sprintf("  DPS not answering for %d s, retrying (%s attempts retried, %s failed); %s stops",
		int(silent.Seconds()), theme.Count(retries), theme.Count(failed), c.Keys.Stop.Help().Key))
}

// resumable is a view running a clean-up job that outlives the console:
// quitting stops it, and ResumableJob names it so that it can be resumed.
type resumable interface{ ResumableJob() string }

// InterruptedJobs lists, by id, the clean-up jobs still running. Asked once
// the program has ended, they are the jobs quitting stopped: the caller
// tells the operator how to resume them.
func (m *Model) InterruptedJobs() []string {
	var ids []string
	for _, v := range m.stack {
		if r, ok := v.(resumable); ok && r.ResumableJob() != "" {
			ids = append(ids, r.ResumableJob())
		}
	}
	return ids
}

// progressLine renders a deletion's progress bar and counts.
func progressLine(c *Common, p deleteProgress, label string) string {
	bar := progress.New(progress.WithWidth(max(min(c.Width-40, 60), 10)), progress.WithoutPercentage())
	if c.NoColor {
		bar = progress.New(progress.WithWidth(max(min(c.Width-40, 60), 10)), progress.WithoutPercentage(), progress.WithFillCharacters('#', '.'))
	}
	pct := 0.0
	if p.total > 0 {
		pct = float64(p.deleted+p.failed) / float64(p.total)
	}
	s := label + " " + bar.ViewAs(pct) + " " + itoa(p.deleted+p.failed) + "/" + itoa(p.total)
	if p.failed > 0 {
		s += c.Styles.Error.Render("  " + itoa(p.failed) + " failed")
	}
	return s
}
