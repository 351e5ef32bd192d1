package tui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// cleanupView finds orphaned registration records with the dps/cleanup
// engine (live counts per source while it scans), shows them per reason and
// group (drillable to the records), lets the operator choose hub devices and
// stale records, previews the exact deletes as a dry run, and runs them on
// confirmation as a resumable job with a live progress bar and a summary.
type cleanupView struct {
	c   *Common
	vid int
	gen int

	scanning bool
	scanned  map[string]cleanup.ScanProgress // latest count per scan source
	plan     *cleanup.Plan
	sel      cleanup.Selection
	counts   []cleanup.Count // plan.Counts(sel), kept so View does not recount
	// unregistered is plan.UnregisteredCounts(): the rows after counts, one
	// per hub with devices that have no registration record.
	unregistered []cleanup.HubCount
	err          string

	row      int                           // the count row under the cursor
	findings *table.Table[cleanup.Finding] // the drill-down of one row; nil = the counts
	drilled  string                        // what the drill-down shows, its title
	preview  *table.Table[previewRow]      // the dry run: plan.Actions(sel); nil = closed
	planned  string                        // what the preview adds up to
	confirm  *confirm.Dialog
	running  bool
	stop     context.CancelFunc // stops the running job
	stopped  bool               // the operator stopped it
	job      string
	progress cleanup.Progress
	failures []cleanup.Failure
	summary  *cleanup.Summary

	unfinished []unfinishedJob // jobs of this DPS with work left, newest first
	jobsGen    int             // drops a listing older than the last change
}

// unfinishedJob is a job an earlier run left with work to do.
type unfinishedJob struct {
	id            string
	created       time.Time
	pending, size int
}

// jobsListed carries the unfinished jobs, read off the event loop.
type jobsListed struct {
	gen  int
	jobs []unfinishedJob
	err  error
}

// maxListedJobs bounds the unfinished jobs offered: one digit each.
const maxListedJobs = 9

// previewRow is one action of the dry run, numbered in run order.
type previewRow struct {
	n int
	cleanup.Action
}

// scanSources is the order the scan's sources are shown in.
var scanSources = []string{cleanup.SourceGroups, cleanup.SourceEnrollments, cleanup.SourceLiveRecords,
	cleanup.SourceHubDevices, cleanup.SourceJournal, cleanup.SourceLookups}

// shownFailures bounds the failures listed under the progress; the report
// that opens at the end lists them all.
const shownFailures = 5

// cleanupEvent carries one engine event, or the end of a scan or run.
type cleanupEvent struct {
	gen     int
	ch      <-chan cleanupEvent
	ev      cleanup.Event
	plan    *cleanup.Plan    // set when a scan ends
	summary *cleanup.Summary // set when a run ends
	err     error
	end     bool
}

func newCleanupView(c *Common) *cleanupView {
	return &cleanupView{c: c, vid: c.newID(), scanned: map[string]cleanup.ScanProgress{}}
}

func (v *cleanupView) id() int       { return v.vid }
func (v *cleanupView) Title() string { return "Clean up orphaned records" }
func (v *cleanupView) Editing() bool {
	return v.confirm != nil || (v.findings != nil && v.findings.Filtering()) || (v.preview != nil && v.preview.Filtering())
}
func (v *cleanupView) Busy() bool { return v.scanning || v.running }
func (v *cleanupView) SetSize(w, h int) {
	if v.findings != nil {
		v.findings.SetSize(w, h-2)
	}
	if v.preview != nil {
		v.preview.SetSize(w, h-2)
	}
}

func (v *cleanupView) Status() string {
	if v.plan == nil {
		return ""
	}
	s := plural(len(v.plan.Findings), "finding", "findings")
	if n := len(v.plan.Unregistered); n > 0 {
		s += ", " + plural(n, "hub device without a record", "hub devices without a record")
	}
	return s
}

func (v *cleanupView) Hints() []*Binding {
	k := v.c.Keys
	switch {
	case v.confirm != nil:
		return nil // the dialog lists its keys
	case (v.findings != nil && v.findings.Filtering()) || (v.preview != nil && v.preview.Filtering()):
		return filterHints(k)
	case v.findings != nil:
		return []*Binding{k.Filter}
	case v.preview != nil:
		return []*Binding{k.Delete, k.Filter}
	case v.running:
		return []*Binding{k.Stop}
	}
	return []*Binding{k.Open, k.Preview, k.Delete, k.HubDevices, k.Stale, k.Unregistered, k.Refresh}
}

// Escape closes the drill-down or the preview before the view. A running
// job keeps the view open: leaving would hide it from the quit guard.
func (v *cleanupView) Escape() bool {
	switch {
	case v.findings != nil:
		if !v.findings.ClearFilter() {
			v.findings = nil
		}
	case v.preview != nil:
		if !v.preview.ClearFilter() {
			v.preview = nil
		}
	default:
		return v.running
	}
	return true
}

// setSelection changes what is deleted and recounts.
func (v *cleanupView) setSelection(sel cleanup.Selection) {
	v.sel = sel
	v.counts, v.unregistered = nil, nil
	if v.plan != nil {
		v.counts, v.unregistered = v.plan.Counts(sel), v.plan.UnregisteredCounts()
	}
	v.row = min(v.row, max(v.rows()-1, 0))
}

// rows is how many rows the counts screen moves over: the record counts,
// then the hubs with unregistered devices.
func (v *cleanupView) rows() int { return len(v.counts) + len(v.unregistered) }

// openRow drills into the row under the cursor.
func (v *cleanupView) openRow() {
	if v.row < len(v.counts) {
		n := v.counts[v.row]
		group := cmp.Or(n.GroupID, "(unknown group)")
		var rows []cleanup.Finding
		for _, f := range v.plan.Findings {
			if f.Reason == n.Reason && f.GroupID == n.GroupID {
				rows = append(rows, f)
			}
		}
		v.openFindings(fmt.Sprintf("Findings: %s, %s", n.Reason, group), rows)
		return
	}
	hub := v.unregistered[v.row-len(v.counts)].Hub
	var rows []cleanup.Finding
	for _, d := range v.plan.Unregistered {
		if d.Hub == hub {
			rows = append(rows, cleanup.Finding{Reason: cleanup.ReasonUnregistered, DeviceID: d.DeviceID, AssignedHub: d.Hub, Detail: d.Detail, HubDevice: true})
		}
	}
	// No record: no registration ID or status, so the device ID gets the room.
	v.openFindingsAs("Hub devices without a registration record on "+hub, rows,
		[]table.Column{{Title: "DEVICE ID", Weight: 2}, {Title: "HUB", Weight: 1}, {Title: "WHY", MinTable: 110, Weight: 2}},
		func(f cleanup.Finding) []string { return []string{f.DeviceID, f.AssignedHub, f.Detail} })
}

// openFindings shows the findings of one row in a table.
func (v *cleanupView) openFindings(title string, rows []cleanup.Finding) {
	v.openFindingsAs(title, rows, []table.Column{{Title: "REGISTRATION ID", Weight: 2}, {Title: "DEVICE ID", Weight: 1}, {Title: "ASSIGNED HUB", Weight: 1},
		{Title: "STATUS", Width: 10, Status: true}, {Title: "HUB DEVICE", Width: 11}, {Title: "WHY", MinTable: 110, Weight: 2}},
		func(f cleanup.Finding) []string {
			return []string{f.RegistrationID, f.DeviceID, f.AssignedHub, f.Status, map[bool]string{true: "yes", false: "no"}[f.HubDevice], f.Detail}
		})
}

// openFindingsAs shows findings in a table of the given columns and cells.
func (v *cleanupView) openFindingsAs(title string, rows []cleanup.Finding, cols []table.Column, cells func(cleanup.Finding) []string) {
	t := newTable(v.c, v.vid, cols,
		func(f cleanup.Finding) string { return f.RegistrationID + "\x00" + f.DeviceID },
		cells,
		func(f cleanup.Finding, q string) bool {
			return table.ContainsFold(f.RegistrationID, q) || table.ContainsFold(f.DeviceID, q) || table.ContainsFold(f.AssignedHub, q)
		})
	t.SetSize(v.c.Width, v.c.Height-2)
	t.Append(rows, false)
	v.findings, v.drilled = t, title
}

// openPreview shows, as a dry run, the exact actions a run would carry out
// under the current selection, in their order. Nothing is sent.
func (v *cleanupView) openPreview() tea.Cmd {
	if v.plan == nil {
		return nil
	}
	actions := v.plan.Actions(v.sel)
	if len(actions) == 0 {
		return flashWarn("nothing selected to delete")
	}
	rows := make([]previewRow, len(actions))
	for i, a := range actions {
		rows[i] = previewRow{n: i + 1, Action: a}
	}
	t := newTable(v.c, v.vid, []table.Column{{Title: "#", Width: 6}, {Title: "DELETE", Width: 10}, {Title: "ID", Weight: 2}, {Title: "HUB", Weight: 2},
		{Title: "REASON", Width: 14}, {Title: "GROUP", Weight: 1}},
		func(r previewRow) string { return itoa(r.n) },
		func(r previewRow) []string {
			return []string{itoa(r.n), string(r.Kind), r.ID, r.Hub, string(r.Reason), r.GroupID}
		},
		func(r previewRow, q string) bool {
			return table.ContainsFold(r.ID, q) || table.ContainsFold(r.Hub, q) || table.ContainsFold(r.GroupID, q)
		})
	t.SetSize(v.c.Width, v.c.Height-2)
	t.Append(rows, false)
	v.preview = t
	v.planned = describeDeletes(actions)
	return nil
}

// describeDeletes says what actions delete, e.g. "12 registration records
// (2 of them stale) and 12 hub device identities".
func describeDeletes(actions []cleanup.Action) string {
	records, devices, stale, unregistered := tally(actions)
	s := plural(records, "registration record", "registration records")
	if stale > 0 {
		s += fmt.Sprintf(" (%s of them stale)", theme.Count(stale))
	}
	if devices > 0 {
		s += " and " + plural(devices, "hub device identity", "hub device identities")
	}
	if unregistered > 0 {
		s += " and " + plural(unregistered, "unregistered hub device", "unregistered hub devices")
	}
	return s
}

// tally counts a selection's deletes by kind, the stale records among
// them, and apart the hub devices that have no record.
func tally(actions []cleanup.Action) (records, devices, stale, unregistered int) {
	for _, a := range actions {
		switch {
		case a.Reason == cleanup.ReasonUnregistered:
			unregistered++
		case a.Kind == cleanup.DeleteRecord:
			records++
			if a.Reason == cleanup.ReasonStale {
				stale++
			}
		case a.Kind == cleanup.DeleteHubDevice:
			devices++
		}
	}
	return records, devices, stale, unregistered
}

func (v *cleanupView) Init() tea.Cmd { return tea.Batch(v.scan(), v.listJobs()) }

// listJobs reads the unfinished jobs of the target from the state directory.
func (v *cleanupView) listJobs() tea.Cmd {
	eng, err := v.engine()
	if err != nil {
		return nil
	}
	v.jobsGen++
	gen := v.jobsGen
	return do(v.vid, func() tea.Msg {
		jobs, err := eng.UnfinishedJobs()
		var out []unfinishedJob
		for _, j := range jobs[:min(len(jobs), maxListedJobs)] {
			out = append(out, unfinishedJob{id: j.ID, created: j.Created, pending: j.Pending, size: j.Actions})
		}
		return jobsListed{gen: gen, jobs: out, err: err}
	})
}

// engine builds the cleanup engine over the target's clients.
func (v *cleanupView) engine() (*cleanup.Engine, error) {
	t := v.c.Target
	if t == nil || t.Service == nil {
		return nil, fmt.Errorf("no DPS target")
	}
	regs, err := t.Registries()
	if err != nil {
		return nil, err
	}
	e := &cleanup.Engine{DPS: t.Service, StateDir: t.StateDir}
	for _, r := range regs {
		e.Hubs = append(e.Hubs, r)
	}
	return e, nil
}

// stream runs work in a goroutine started by the Cmd and delivers its
// events one message at a time; the last message has end set.
func (v *cleanupView) stream(ctx context.Context, work func(ctx context.Context, events chan<- cleanup.Event) cleanupEvent) tea.Cmd {
	v.gen++
	gen := v.gen
	return do(v.vid, func() tea.Msg {
		out := make(chan cleanupEvent, 16)
		go func() {
			defer close(out)
			events := make(chan cleanup.Event)
			done := make(chan cleanupEvent, 1)
			go func() {
				r := work(ctx, events)
				close(events)
				done <- r
			}()
			// Events never block the engine: when the console is behind (or
			// the view is closed) they are dropped, keeping room for the end.
			// Progress is a snapshot and the summary lists every failure.
			for ev := range events {
				if len(out) < cap(out)-1 {
					out <- cleanupEvent{gen: gen, ch: out, ev: ev}
				}
			}
			r := <-done
			r.gen, r.ch, r.end = gen, out, true
			out <- r
		}()
		return <-out
	})
}

func listenCleanup(to int, ch <-chan cleanupEvent) tea.Cmd {
	return do(to, func() tea.Msg { return <-ch })
}

func (v *cleanupView) scan() tea.Cmd {
	eng, err := v.engine()
	if err != nil {
		v.err = err.Error()
		return nil
	}
	v.scanning, v.plan, v.counts, v.summary, v.err, v.job = true, nil, nil, nil, "", ""
	v.failures, v.findings, v.preview = nil, nil, nil
	v.scanned = map[string]cleanup.ScanProgress{}
	return v.stream(v.c.Ctx, func(ctx context.Context, events chan<- cleanup.Event) cleanupEvent {
		plan, err := eng.Scan(ctx, cleanup.ScanOptions{}, events)
		return cleanupEvent{plan: plan, err: err}
	})
}

// run deletes what the selection asks for. The job file is written in the
// Cmd's goroutine, not here: Update does no I/O.
func (v *cleanupView) run() tea.Cmd {
	plan, sel := v.plan, v.sel
	return v.runJob(len(plan.Actions(sel)), func(eng *cleanup.Engine) (*cleanup.Job, error) { return eng.NewJob(plan, sel) })
}

// resume runs an unfinished job again from where it stopped.
func (v *cleanupView) resume(j unfinishedJob) tea.Cmd {
	v.unfinished = slices.DeleteFunc(v.unfinished, func(u unfinishedJob) bool { return u.id == j.id })
	v.jobsGen++ // a listing in flight still has it
	return v.runJob(j.size, func(eng *cleanup.Engine) (*cleanup.Job, error) { return eng.OpenJob(j.id) })
}

// runJob runs the job open makes, with a context of its own so that the
// operator can stop it; a stopped job is resumable.
func (v *cleanupView) runJob(total int, open func(*cleanup.Engine) (*cleanup.Job, error)) tea.Cmd {
	eng, err := v.engine()
	if err != nil {
		v.err = err.Error()
		return nil
	}
	v.preview = nil
	v.running, v.stopped, v.job, v.failures, v.summary, v.err = true, false, "", nil, nil, ""
	v.progress = cleanup.Progress{Total: total}
	ctx, stop := context.WithCancel(v.c.Ctx)
	v.stop = stop
	return v.stream(ctx, func(ctx context.Context, events chan<- cleanup.Event) cleanupEvent {
		job, err := open(eng)
		if err != nil {
			return cleanupEvent{err: err}
		}
		// The job's id at once, so that quitting now can still name it.
		events <- cleanup.Progress{JobID: job.ID, Total: len(job.Actions), Done: len(job.Actions) - job.Pending()}
		sum, err := eng.Run(ctx, job, cleanup.RunOptions{}, events)
		return cleanupEvent{summary: &sum, err: err}
	})
}

// RunningJob names the deletion in flight, if any.
func (v *cleanupView) RunningJob() string {
	if v.running {
		return strings.TrimSpace("clean-up job " + v.job)
	}
	return ""
}

// ResumableJob is the id of the job in flight, once it has one: quitting
// stops it, and it can be resumed later.
func (v *cleanupView) ResumableJob() string {
	if v.running {
		return v.job
	}
	return ""
}

func (v *cleanupView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case cleanupEvent:
		if msg.gen != v.gen {
			return nil
		}
		if !msg.end {
			switch ev := msg.ev.(type) {
			case cleanup.ScanProgress:
				v.scanned[ev.Source] = ev
			case cleanup.Progress:
				v.progress, v.job = ev, ev.JobID
			case cleanup.Failure:
				if len(v.failures) < shownFailures { // Progress.Failed counts them all
					v.failures = append(v.failures, ev)
				}
			}
			return listenCleanup(v.vid, msg.ch)
		}
		wasScan := v.scanning
		v.scanning, v.running, v.stop = false, false, nil
		if msg.err != nil && !(v.stopped && errors.Is(msg.err, context.Canceled)) {
			v.err = msg.err.Error()
			if wasScan {
				v.err += "\n(r scans again)"
			}
		}
		if msg.plan != nil {
			v.plan = msg.plan
			v.setSelection(v.sel)
		}
		if msg.summary != nil {
			return v.finished(*msg.summary)
		}
		return nil
	case jobsListed:
		if msg.gen != v.jobsGen {
			return nil
		}
		if msg.err != nil {
			return flashErr(msg.err)
		}
		v.unfinished = msg.jobs
		return nil
	case table.Msg, tea.PasteMsg, tea.MouseClickMsg:
		if t := v.table(); t != nil {
			cmd, _ := t.Update(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		return v.key(msg)
	}
	return nil
}

// finished shows how a run ended; with failures it opens a report listing
// every one of them.
func (v *cleanupView) finished(s cleanup.Summary) tea.Cmd {
	v.summary, v.job = &s, s.JobID
	text := fmt.Sprintf("clean-up job %s finished", s.JobID)
	if v.stopped {
		text = fmt.Sprintf("clean-up job %s stopped; %s", s.JobID, resumeHint(s.JobID))
	}
	if len(s.Failures) == 0 {
		return flash(text)
	}
	failures := make([]string, len(s.Failures))
	for i, f := range s.Failures {
		failures[i] = f.Error
	}
	report := newReportView(v.c, "Clean-up job "+s.JobID, v.runView(), failures)
	return tea.Batch(flashErr(fmt.Errorf("%s with %s failures; resuming the job tries them again", text, theme.Count(len(s.Failures)))), v.c.open(report))
}

// resumeHint says how a stopped job is resumed.
func resumeHint(id string) string {
	return "resume it from :cleanup, or with: dpsconsole cleanup --resume " + id
}

// table is the open drill-down or preview, as the filter messages' target.
func (v *cleanupView) table() interface {
	Update(tea.Msg) (tea.Cmd, bool)
} {
	switch {
	case v.findings != nil:
		return v.findings
	case v.preview != nil:
		return v.preview
	}
	return nil
}

func (v *cleanupView) key(msg tea.KeyPressMsg) tea.Cmd {
	k := v.c.Keys
	if v.confirm != nil {
		c := v.confirm
		v.confirm = nil
		return answer(c, msg)
	}
	if v.running && k.Stop.Matches(msg) && v.stop != nil {
		v.stop()
		v.stopped = true
		return flash("stopping clean-up job " + v.job + "…")
	}
	if v.scanning || v.running {
		return nil
	}
	if v.findings != nil {
		cmd, _ := v.findings.Update(msg)
		return cmd
	}
	if v.preview != nil {
		if cmd, handled := v.preview.Update(msg); handled {
			return cmd
		}
		if k.Delete.Matches(msg) {
			return v.askRun()
		}
		return nil
	}
	switch {
	case k.Up.Matches(msg):
		v.row = max(v.row-1, 0)
	case k.Down.Matches(msg):
		v.row = min(v.row+1, max(v.rows()-1, 0))
	case k.Open.Matches(msg) && v.row < v.rows():
		v.openRow()
	case k.Refresh.Matches(msg):
		return tea.Batch(v.scan(), v.listJobs())
	case len(msg.Text) == 1 && msg.Text >= "1" && msg.Text <= "9" && int(msg.Text[0]-'1') < len(v.unfinished) && !v.c.ReadOnly:
		return v.askResume(v.unfinished[msg.Text[0]-'1'])
	case k.HubDevices.Matches(msg):
		sel := v.sel
		sel.HubDevices = !sel.HubDevices
		v.setSelection(sel)
	case k.Stale.Matches(msg):
		sel := v.sel
		sel.IncludeStale = !sel.IncludeStale
		v.setSelection(sel)
	case k.Unregistered.Matches(msg):
		return v.toggleUnregistered()
	case (k.Preview.Matches(msg) || k.Delete.Matches(msg)) && v.summary != nil:
		return flashWarn("the plan is from before the run: r scans again")
	case k.Preview.Matches(msg), k.Delete.Matches(msg):
		// Delete goes through the preview: the operator sees the exact
		// deletes before the confirmation.
		return v.openPreview()
	}
	return nil
}

// toggleUnregistered deletes or keeps the hub devices that have no
// registration record. They may be devices someone made on purpose, so
// choosing to delete them asks first, naming how many on which hubs
// (under --readonly, which deletes nothing, it does not ask).
func (v *cleanupView) toggleUnregistered() tea.Cmd {
	sel := v.sel
	sel.UnregisteredDevices = !sel.UnregisteredDevices
	if !sel.UnregisteredDevices {
		v.setSelection(sel)
		return nil
	}
	if len(v.unregistered) == 0 {
		return flashWarn("no hub device lacks a registration record: nothing to select")
	}
	if v.c.ReadOnly { // nothing can be deleted: the selection only feeds the preview
		v.setSelection(sel)
		return nil
	}
	var per []string
	for _, n := range v.unregistered {
		per = append(per, plural(n.Devices, "hub device", "hub devices")+" without a registration record on "+n.Hub)
	}
	text := "Also delete " + strings.Join(per, ", ") + "?\n" +
		"DPS never provisioned them (they were made on the hub) or no longer has their record; they may be in use. " +
		"Each is deleted only if it has not changed since the scan."
	v.confirm = &confirm.Dialog{Text: text, Choices: []confirm.Choice{{Key: "y", Label: "select them for deletion", Run: func() tea.Cmd {
		v.setSelection(sel)
		return nil
	}}}}
	return nil
}

// askResume confirms resuming an unfinished job.
func (v *cleanupView) askResume(j unfinishedJob) tea.Cmd {
	text := fmt.Sprintf("Resume clean-up job %s?\nIt has %s of its %s deletes left, as planned when it started (what is gone already counts as done).",
		j.id, theme.Count(j.pending), theme.Count(j.size))
	v.confirm = &confirm.Dialog{Text: text, Choices: []confirm.Choice{{Key: "y", Label: "resume it", Run: func() tea.Cmd { return v.resume(j) }}}}
	return nil
}

// askRun confirms the previewed deletes.
func (v *cleanupView) askRun() tea.Cmd {
	actions := v.plan.Actions(v.sel)
	if len(actions) == 0 {
		return flashWarn("nothing selected to delete")
	}
	text := "Delete " + describeDeletes(actions) + "?\n" +
		"The job is logged in the state directory; an interrupted run resumes without repeating work."
	v.confirm = &confirm.Dialog{Text: text, Choices: []confirm.Choice{{Key: "y", Label: "delete them", Run: v.run}}}
	return nil
}

func (v *cleanupView) View() string {
	st := v.c.Styles
	if v.confirm != nil {
		return v.confirm.View(v.c.Styles, v.c.Width)
	}
	if v.findings != nil {
		return st.Title.Render(theme.Fit(v.drilled, v.c.Width)) + "\n\n" + v.findings.View()
	}
	if v.preview != nil {
		next := "nothing sent yet; d asks before deleting them, esc goes back"
		if v.c.ReadOnly {
			next = "read-only mode: nothing can be deleted"
		}
		return st.Title.Render(theme.Fit("Dry run: "+v.planned, v.c.Width)) + "\n" +
			st.Muted.Render(theme.Fit("  "+next, v.c.Width)) + "\n" + v.preview.View()
	}
	var lines []string
	if v.err != "" {
		lines = append(lines, st.Error.Width(max(v.c.Width-2, 20)).Render(v.err), "")
	}
	if v.scanning {
		lines = append(lines, st.Title.Render("Scanning…"))
		for _, s := range scanSources {
			if p, ok := v.scanned[s]; ok {
				state := st.Muted.Render("reading")
				if p.Done {
					state = st.OK.Render("done")
				}
				lines = append(lines, fmt.Sprintf("  %-26s %9s  %s", s, theme.Count(p.Count), state))
			}
		}
		return strings.Join(lines, "\n")
	}
	lines = append(lines, v.unfinishedView()...)
	if v.plan != nil {
		lines = append(lines, v.countsView()...)
	}
	if v.running || v.summary != nil {
		lines = append(lines, "")
		lines = append(lines, v.progressView()...)
	}
	return strings.Join(lines, "\n")
}

// countsView is the plan grouped by reason and group, and the selection.
func (v *cleanupView) countsView() []string {
	st := v.c.Styles
	lines := []string{st.Title.Render("Orphaned registration records"), ""}
	if v.rows() == 0 {
		lines = append(lines, st.OK.Render("  Nothing to clean up: every record belongs to a live enrollment, every hub device has a record."))
	} else {
		lines = append(lines, st.TableHeader.Render(fmt.Sprintf("  %-15s %-28s %9s %12s  %s", "REASON", "GROUP", "RECORDS", "HUB DEVICES", "TO DELETE")))
		// Only the rows that fit are drawn, the cursor's row among them.
		rows := max(v.c.Height-v.countsChrome(), 3)
		first := max(v.row-rows+1, 0)
		for i := range v.rows() {
			if i < first || i >= first+rows {
				continue
			}
			line := v.countRow(i)
			if i == v.row {
				line = st.Selected.Render(line)
			}
			lines = append(lines, line)
		}
		if hidden := v.rows() - rows; hidden > 0 {
			lines = append(lines, st.Muted.Render(fmt.Sprintf("  %s more rows (↑/↓)", theme.Count(hidden))))
		}
	}
	lines = append(lines, v.notes()...)
	toggle := func(b *Binding, what string, on bool, yes string) string {
		state := "kept"
		if on {
			state = yes
		}
		return "  " + st.Key.Render(fmt.Sprintf("%-2s", b.Help().Key)) + fmt.Sprintf("%-42s ", what) + st.Key.Render(state)
	}
	k := v.c.Keys
	lines = append(lines, "",
		toggle(k.HubDevices, "Hub device identities of deleted records:", v.sel.HubDevices, "deleted too"),
		toggle(k.Stale, "Stale records of live enrollments:", v.sel.IncludeStale, "deleted too"),
		toggle(k.Unregistered, "Hub devices without a registration record:", v.sel.UnregisteredDevices, "deleted too"))
	records, devices := 0, 0
	for _, n := range v.counts {
		if n.Selected {
			records += n.Records
			if v.sel.HubDevices {
				devices += n.HubDevices
			}
		}
	}
	next := "p previews them, d deletes them"
	if v.summary != nil {
		next = "r scans again"
	} else if v.c.ReadOnly {
		next = "read-only: p previews them"
	}
	selected := "  Selected: " + plural(records, "record", "records") + ", " + plural(devices, "hub device", "hub devices")
	if v.sel.UnregisteredDevices && len(v.plan.Unregistered) > 0 {
		selected += ", " + plural(len(v.plan.Unregistered), "unregistered hub device", "unregistered hub devices")
	}
	lines = append(lines, "", selected+st.Muted.Render("  ("+next+")"))
	return lines
}

// countRow is row i of the counts: a reason and group's records, or (after
// them) a hub's devices that have no registration record.
func (v *cleanupView) countRow(i int) string {
	if i < len(v.counts) {
		n := v.counts[i]
		sel := "no (s)"
		if n.Selected {
			sel = "yes"
		}
		return fmt.Sprintf("  %-15s %-28s %9s %12s  %s", n.Reason, theme.Fit(cmp.Or(n.GroupID, "(unknown)"), 28), theme.Count(n.Records), theme.Count(n.HubDevices), sel)
	}
	n := v.unregistered[i-len(v.counts)]
	sel := "no (u)"
	if v.sel.UnregisteredDevices {
		sel = "yes"
	}
	return fmt.Sprintf("  %-15s %-28s %9s %12s  %s", "unregistered", theme.Fit("hub "+n.Hub, 28), "—", theme.Count(n.Devices), sel)
}

// notes are the plan's notes, wrapped: each says what to do, in full.
func (v *cleanupView) notes() []string {
	var lines []string
	for _, note := range v.plan.Notes {
		lines = append(lines, strings.Split(v.c.Styles.Warning.Width(max(v.c.Width-2, 20)).Render("  note: "+note), "\n")...)
	}
	return lines
}

// unfinishedView offers the jobs earlier runs left unfinished.
func (v *cleanupView) unfinishedView() []string {
	if len(v.unfinished) == 0 || v.running {
		return nil
	}
	st := v.c.Styles
	how := "a digit resumes one"
	if v.c.ReadOnly {
		how = "read-only: not resumed here"
	}
	lines := []string{st.Title.Render("Unfinished clean-up jobs") + st.Muted.Render("  ("+how+")")}
	for i, j := range v.unfinished {
		lines = append(lines, fmt.Sprintf("  %s %s  started %s  %s of %s deletes left", st.Key.Render(itoa(i+1)), j.id,
			stamp(j.created), theme.Count(j.pending), theme.Count(j.size)))
	}
	return append(lines, "")
}

// countsChrome is how many lines the counts screen has besides the count
// rows: unfinished jobs, titles, notes, toggles, selection, and a run's
// progress and summary.
func (v *cleanupView) countsChrome() int {
	n := 10 + len(v.notes()) + len(v.unfinishedView())
	if v.running || v.summary != nil {
		n += 1 + len(v.progressView())
	}
	return n
}

// progressView is the run's live progress, then its summary, then the first
// failures.
func (v *cleanupView) progressView() []string {
	return append(v.runView(), v.failuresView()...)
}

// runView is the run's live progress, then its summary.
func (v *cleanupView) runView() []string {
	st := v.c.Styles
	p := v.progress
	lines := []string{progressLine(v.c, deleteProgress{deleted: p.Done, failed: p.Failed, total: p.Total}, "job")}
	if v.running && p.JobID == "" {
		// A million actions take a second or more to write (or, resuming, to read).
		return append(lines, st.Muted.Render(fmt.Sprintf("  preparing the job log (%s actions) before the first delete…", theme.Count(p.Total))))
	}
	stats := rateLine(p.Rate, p.ETA, p.Elapsed, v.running)
	if p.Throttled > 0 {
		stats += fmt.Sprintf("  throttled %d times, pace %.0f requests/s", p.Throttled, p.Pace)
	}
	if v.running {
		stats += "  (" + v.c.Keys.Stop.Help().Key + " stops; the job resumes later)"
	}
	lines = append(lines, st.Muted.Render(stats))
	if s := silenceLine(v.c, p.Silent, p.Faults, p.Failed); s != "" && v.running {
		lines = append(lines, s)
	}
	if s := v.summary; s != nil {
		how := "Finished in"
		if v.stopped {
			how = "Stopped after"
		}
		lines = append(lines, "", st.Title.Render(fmt.Sprintf("%s %s: %s requests, %s throttled",
			how, s.Elapsed.Round(100*time.Millisecond), theme.Count(s.Requests), theme.Count(s.Throttled)))+st.Muted.Render("  job "+s.JobID))
		if v.stopped {
			lines = append(lines, st.Warning.Render("  "+resumeHint(s.JobID)))
		}
		for _, kind := range slices.Sorted(maps.Keys(s.Outcomes)) {
			var parts []string
			for _, o := range slices.Sorted(maps.Keys(s.Outcomes[kind])) {
				parts = append(parts, fmt.Sprintf("%s %s", theme.Count(s.Outcomes[kind][o]), o))
			}
			lines = append(lines, fmt.Sprintf("  %s: %s", kind, strings.Join(parts, ", ")))
		}
	}
	return lines
}

// failuresView is the first failures, and how many more there are.
func (v *cleanupView) failuresView() []string {
	st := v.c.Styles
	shown, failed := v.failures, v.progress.Failed
	if s := v.summary; s != nil {
		shown, failed = s.Failures, len(s.Failures)
	}
	var lines []string
	shown = shown[:min(len(shown), shownFailures)]
	for _, f := range shown {
		lines = append(lines, st.Error.Render(fmt.Sprintf("  failed: %s %s: %s", f.Action.Kind, f.Action.ID, f.Error)))
	}
	if more := failed - len(shown); more > 0 {
		lines = append(lines, st.Error.Render(fmt.Sprintf("  … and %s more failures (the report at the end lists them all)", theme.Count(more))))
	}
	return lines
}
