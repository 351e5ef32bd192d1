package tui

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps/cleanup"
)

// cleanupView finds orphaned registration records with the dps/cleanup
// engine, shows them per reason and group, and deletes them on
// confirmation with a resumable job, showing its progress.
type cleanupView struct {
	c   *Common
	vid int
	gen int

	scanning bool
	scanned  map[string]int // count per scan source
	plan     *cleanup.Plan
	sel      cleanup.Selection
	err      string

	row      int                     // the count row under the cursor
	findings *Table[cleanup.Finding] // the drill-down of one row; nil = the counts
	confirm  *confirm
	running  bool
	job      string
	progress cleanup.Progress
	failures []cleanup.Failure
	summary  *cleanup.Summary
}

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
	return &cleanupView{c: c, vid: c.newID(), scanned: map[string]int{}}
}

func (v *cleanupView) id() int       { return v.vid }
func (v *cleanupView) Title() string { return "Clean up orphaned records" }
func (v *cleanupView) Editing() bool {
	return v.confirm != nil || (v.findings != nil && v.findings.Filtering())
}
func (v *cleanupView) Busy() bool { return v.scanning || v.running }
func (v *cleanupView) SetSize(w, h int) {
	if v.findings != nil {
		v.findings.SetSize(w, h-2)
	}
}

func (v *cleanupView) Status() string {
	if v.plan == nil {
		return ""
	}
	return fmt.Sprintf("%s findings", count(len(v.plan.Findings)))
}

func (v *cleanupView) Hints() []*Binding {
	k := v.c.Keys
	if v.findings != nil {
		return []*Binding{k.Filter}
	}
	return []*Binding{k.Open, k.Delete, k.HubDevices, k.Refresh}
}

// Escape closes the drill-down before the view.
func (v *cleanupView) Escape() bool {
	if v.findings != nil && !v.findings.ClearFilter() {
		v.findings = nil
	}
	return true
}

// openFindings shows the findings of one count row in a table.
func (v *cleanupView) openFindings(n cleanup.Count) {
	t := NewTable(v.c, v.vid, []Column{{"REGISTRATION ID", 0, 0, 2}, {"DEVICE ID", 0, 0, 1}, {"ASSIGNED HUB", 0, 0, 1},
		{"STATUS", 10, 0, 0}, {"HUB DEVICE", 10, 0, 0}, {"WHY", 0, 110, 2}},
		func(f cleanup.Finding) string { return f.RegistrationID },
		func(f cleanup.Finding) []string {
			return []string{f.RegistrationID, f.DeviceID, f.AssignedHub, f.Status, map[bool]string{true: "yes", false: "no"}[f.HubDevice], f.Detail}
		},
		func(f cleanup.Finding, q string) bool {
			return containsFold(f.RegistrationID, q) || containsFold(f.AssignedHub, q)
		})
	var rows []cleanup.Finding
	for _, f := range v.plan.Findings {
		if f.Reason == n.Reason && f.GroupID == n.GroupID {
			rows = append(rows, f)
		}
	}
	t.SetSize(v.c.Width, v.c.Height-2)
	t.Append(rows, false)
	v.findings = t
}

func (v *cleanupView) Init() tea.Cmd { return v.scan() }

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
func (v *cleanupView) stream(work func(ctx context.Context, events chan<- cleanup.Event) cleanupEvent) tea.Cmd {
	v.gen++
	gen, ctx := v.gen, v.c.Ctx
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
	v.scanning, v.plan, v.summary, v.err, v.job = true, nil, nil, "", ""
	v.scanned = map[string]int{}
	return v.stream(func(ctx context.Context, events chan<- cleanup.Event) cleanupEvent {
		plan, err := eng.Scan(ctx, cleanup.ScanOptions{}, events)
		return cleanupEvent{plan: plan, err: err}
	})
}

func (v *cleanupView) run() tea.Cmd {
	eng, err := v.engine()
	if err != nil {
		v.err = err.Error()
		return nil
	}
	job, err := eng.NewJob(v.plan, v.sel)
	if err != nil {
		v.err = err.Error()
		return nil
	}
	v.running, v.job, v.failures, v.progress = true, job.ID, nil, cleanup.Progress{Total: len(job.Actions)}
	return v.stream(func(ctx context.Context, events chan<- cleanup.Event) cleanupEvent {
		sum, err := eng.Run(ctx, job, cleanup.RunOptions{}, events)
		return cleanupEvent{summary: &sum, err: err}
	})
}

// RunningJob names the deletion in flight, if any.
func (v *cleanupView) RunningJob() string {
	if v.running {
		return "clean-up job " + v.job
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
				v.scanned[ev.Source] = ev.Count
			case cleanup.Progress:
				v.progress = ev
			case cleanup.Failure:
				v.failures = append(v.failures, ev)
			}
			return listenCleanup(v.vid, msg.ch)
		}
		v.scanning, v.running = false, false
		if msg.err != nil {
			v.err = msg.err.Error()
		}
		if msg.plan != nil {
			v.plan = msg.plan
		}
		if msg.summary != nil {
			v.summary = msg.summary
			return flash(fmt.Sprintf("clean-up job %s finished", msg.summary.JobID))
		}
		return nil
	case filterTick, filterDone, tea.PasteMsg:
		if v.findings != nil {
			cmd, _ := v.findings.Update(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		k := v.c.Keys
		if v.confirm != nil {
			c := v.confirm
			v.confirm = nil
			cmd, _ := c.answer(msg)
			return cmd
		}
		if v.scanning || v.running {
			return nil
		}
		if v.findings != nil {
			cmd, _ := v.findings.Update(msg)
			return cmd
		}
		var counts []cleanup.Count
		if v.plan != nil {
			counts = v.plan.Counts(v.sel)
		}
		switch {
		case k.Up.Matches(msg):
			v.row = max(v.row-1, 0)
		case k.Down.Matches(msg):
			v.row = min(v.row+1, max(len(counts)-1, 0))
		case k.Open.Matches(msg) && v.row < len(counts):
			v.openFindings(counts[v.row])
		case k.Refresh.Matches(msg):
			return v.scan()
		case k.HubDevices.Matches(msg):
			v.sel.HubDevices = !v.sel.HubDevices
		case k.Delete.Matches(msg):
			return v.askRun()
		}
	}
	return nil
}

func (v *cleanupView) askRun() tea.Cmd {
	if v.plan == nil {
		return nil
	}
	records, devices := 0, 0
	for _, n := range v.plan.Counts(v.sel) {
		if n.Selected {
			records += n.Records
			if v.sel.HubDevices {
				devices += n.HubDevices
			}
		}
	}
	if records == 0 {
		return flash("no orphaned registration records to delete")
	}
	text := fmt.Sprintf("Delete %s orphaned registration records", count(records))
	if devices > 0 {
		text += fmt.Sprintf(" and %s hub device identities", count(devices))
	}
	text += "?\nThe job is logged in the state directory; an interrupted run resumes without repeating work."
	v.confirm = &confirm{text: text, choices: []choice{{"y", "delete them", v.run}}}
	return nil
}

func (v *cleanupView) View() string {
	st := v.c.Styles
	if v.confirm != nil {
		return v.confirm.view(v.c)
	}
	var lines []string
	if v.err != "" {
		lines = append(lines, st.Error.Width(max(v.c.Width-2, 20)).Render(v.err), "")
	}
	if v.findings != nil {
		n := v.plan.Counts(v.sel)[v.row]
		group := n.GroupID
		if group == "" {
			group = "(unknown group)"
		}
		return st.Title.Render(fmt.Sprintf("Findings: %s, %s", n.Reason, group)) + "\n\n" + v.findings.View()
	}
	if v.scanning {
		lines = append(lines, st.Title.Render("Scanning…"))
		for _, s := range []string{cleanup.SourceGroups, cleanup.SourceEnrollments, cleanup.SourceLiveRecords, cleanup.SourceHubDevices, cleanup.SourceJournal, cleanup.SourceLookups} {
			if n, ok := v.scanned[s]; ok {
				lines = append(lines, fmt.Sprintf("  %-26s %s", s, count(n)))
			}
		}
		return strings.Join(lines, "\n")
	}
	if v.plan != nil {
		lines = append(lines, st.Title.Render("Orphaned registration records"), "")
		counts := v.plan.Counts(v.sel)
		if len(counts) == 0 {
			lines = append(lines, st.OK.Render("  Nothing to clean up: every record belongs to a live enrollment."))
		} else {
			lines = append(lines, st.TableHeader.Render(fmt.Sprintf("  %-15s %-28s %9s %12s  %s", "REASON", "GROUP", "RECORDS", "HUB DEVICES", "DELETED")))
			for i, n := range counts {
				group := n.GroupID
				if group == "" {
					group = "(unknown)"
				}
				sel := "no (stale records are kept)"
				if n.Selected {
					sel = "yes"
				}
				line := fmt.Sprintf("  %-15s %-28s %9s %12s  %s", n.Reason, fit(group, 28), count(n.Records), count(n.HubDevices), sel)
				if i == v.row {
					line = st.Selected.Render(line)
				}
				lines = append(lines, line)
			}
		}
		for _, note := range v.plan.Notes {
			lines = append(lines, st.Warning.Render("  note: "+note))
		}
		hubs := "kept"
		if v.sel.HubDevices {
			hubs = "deleted too"
		}
		lines = append(lines, "", "  Hub device identities of deleted records: "+st.Key.Render(hubs)+st.Muted.Render("  (h switches)"))
	}
	if v.running || v.summary != nil {
		p := v.progress
		lines = append(lines, "", progressLine(v.c, deleteProgress{deleted: p.Done - p.Failed, failed: p.Failed, total: p.Total}, "job "+v.job))
		if p.Throttled > 0 {
			lines = append(lines, st.Muted.Render(fmt.Sprintf("  throttled %d times; pace %.0f requests/s", p.Throttled, p.Pace)))
		}
	}
	if s := v.summary; s != nil {
		for _, kind := range slices.Sorted(maps.Keys(s.Outcomes)) {
			var parts []string
			for _, o := range slices.Sorted(maps.Keys(s.Outcomes[kind])) {
				parts = append(parts, fmt.Sprintf("%s %s", count(s.Outcomes[kind][o]), o))
			}
			lines = append(lines, fmt.Sprintf("  %s: %s", kind, strings.Join(parts, ", ")))
		}
	}
	failures := v.failures
	if v.summary != nil {
		failures = v.summary.Failures
	}
	for _, f := range failures {
		lines = append(lines, st.Error.Render("  failed: "+f.Error))
	}
	return strings.Join(lines, "\n")
}
