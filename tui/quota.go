package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/progress"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps/inventory"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// quotaView is :quota: the shape of the DPS against its documented limits,
// counted page by page off the event loop. The count is kept for the
// session (Common.quota); r counts again, esc stops a count under way.
type quotaView struct {
	c        *Common
	vid      int
	job      streamJob
	progress inventory.Progress
	started  time.Time
	err      string
	top      int // first group row shown
	bar      progress.Model
}

// quotaCount is a finished count, kept in Common for the session.
type quotaCount struct {
	counts inventory.Counts
	at     time.Time
	took   time.Duration
}

func newQuotaView(c *Common) *quotaView {
	return &quotaView{c: c, vid: c.newID(), bar: progress.New(progress.WithWidth(20), progress.WithoutPercentage())}
}

func (v *quotaView) id() int       { return v.vid }
func (v *quotaView) Title() string { return "Quota: the shape of the DPS" }
func (v *quotaView) Editing() bool { return false }
func (v *quotaView) Busy() bool    { return v.job.running() }

// SetSize gives the bars what the columns leave (none below 80 columns).
func (v *quotaView) SetSize(w, _ int) { v.bar.SetWidth(min(max(w-76, 0), 20)) }

func (v *quotaView) Status() string {
	if q := v.c.quota; q != nil && !v.job.running() {
		return plural(q.counts.Records(), "record", "records")
	}
	return ""
}

func (v *quotaView) Hints() []*Binding {
	k := v.c.Keys
	if v.job.running() {
		return []*Binding{k.Back}
	}
	return []*Binding{k.Refresh, k.Up, k.Down}
}

// Init shows the session's count, or starts one.
func (v *quotaView) Init() tea.Cmd {
	if v.c.quota != nil {
		return nil
	}
	return v.count()
}

// Escape stops a count under way instead of leaving the view.
func (v *quotaView) Escape() bool {
	if !v.job.running() {
		return false
	}
	v.job.stop()
	v.err = "count stopped; r counts again"
	return true
}

func (v *quotaView) count() tea.Cmd {
	t := v.c.Target
	if t == nil || t.Service == nil {
		v.err = "no DPS target"
		return nil
	}
	ctx := v.job.start(v.c.Ctx)
	v.err, v.progress, v.started = "", inventory.Progress{}, v.c.Now()
	opts := inventory.Options{KnownGroups: inventory.KnownGroups(t.Journal), KnownHubs: inventory.HubHosts(t.HubConnectionStrings)}
	svc := t.Service
	return runStream(v.vid, v.job.gen, func(report func(inventory.Progress)) (inventory.Counts, error) {
		return inventory.Count(ctx, svc, opts, report)
	})
}

func (v *quotaView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case streamMsg[inventory.Progress, inventory.Counts]:
		if msg.gen != v.job.gen {
			return nil
		}
		if !msg.end {
			v.progress = msg.progress
			return msg.next(v.vid)
		}
		v.job.finished()
		switch {
		case errors.Is(msg.err, context.Canceled):
		case msg.err != nil:
			v.err = msg.err.Error() + "; r tries again"
		default:
			now := v.c.Now()
			v.c.quota = &quotaCount{counts: msg.result, at: now, took: now.Sub(v.started)}
			v.top = 0
		}
		return nil
	case tea.KeyPressMsg:
		k := v.c.Keys
		switch {
		case k.Refresh.Matches(msg):
			return v.count()
		case k.Down.Matches(msg):
			v.top++
		case k.Up.Matches(msg):
			v.top = max(v.top-1, 0)
		}
	}
	return nil
}

// limitWidth is the width of the limits' names column.
const limitWidth = 38

func (v *quotaView) View() string {
	st := v.c.Styles
	var b strings.Builder
	if v.job.running() {
		p := v.progress
		fmt.Fprintf(&b, "Counting %s: %s so far, %d of %d groups done.\n", p.Stage, plural(p.Records, "record", "records"), p.GroupsDone, p.Groups)
		b.WriteString(note(v.c, "Records are counted page by page without being decoded; esc stops."))
		return b.String()
	}
	if v.err != "" {
		b.WriteString(errorText(v.c, v.err) + "\n\n")
	}
	q := v.c.quota
	if q == nil {
		return b.String()
	}
	c := q.counts
	fmt.Fprintf(&b, "%s\n", st.Muted.Render(fmt.Sprintf("Counted at %s in %s; r counts again.", q.at.Format("15:04:05"), q.took.Round(10*time.Millisecond))))
	for k, l := range inventory.Limits {
		used := c.Used(inventory.Kind(k))
		share := float64(used) / float64(l.Max)
		bar := ""
		if v.bar.Width() > 0 {
			bar = v.bar.ViewAs(min(share, 1)) + " "
		}
		line := fmt.Sprintf("%s %9s / %-9s %s%5.1f %%", theme.Fit(l.Resource, limitWidth), theme.Count(used), theme.Count(l.Max), bar, 100*share)
		switch {
		case share >= 0.9:
			line = st.Error.Render(line)
		case share >= 0.75:
			line = st.Warning.Render(line)
		}
		if !l.Adjustable {
			line += st.Muted.Render("  fixed")
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(note(v.c, "Support can raise every limit but the fixed ones. Linked hubs: those the enrollments and the hub connection strings name (the service API cannot list them). Records: counted through the groups and enrollments, so a group deleted before dpsconsole saw it leaves records no listing reaches (:cleanup finds them through the hubs).") + "\n")
	if c.UnreadEnrollments > 0 {
		b.WriteString(st.Warning.Render(ansi.Wrap(fmt.Sprintf("The records of %s were not read (one request each) and are not in the count.",
			plural(c.UnreadEnrollments, "individual enrollment", "individual enrollments")), max(v.c.Width, 1), " ")) + "\n")
	}
	b.WriteString("\n" + st.TableHeader.Render("Records per group, largest first") + "\n")
	rows := v.groupRows(c)
	shown := max(v.c.Height-strings.Count(b.String(), "\n")-2, 1)
	v.top = min(v.top, max(len(rows)-shown, 0))
	for _, r := range rows[v.top:min(v.top+shown, len(rows))] {
		b.WriteString(r + "\n")
	}
	if rest := len(rows) - v.top - shown; rest > 0 {
		b.WriteString(st.Muted.Render(fmt.Sprintf("… %d more (↓)", rest)) + "\n")
	}
	b.WriteString(note(v.c, "Limits: "+inventory.LimitsSource+"."))
	return b.String()
}

func (v *quotaView) groupRows(c inventory.Counts) []string {
	rows := make([]string, 0, len(c.Groups)+1)
	for _, g := range c.Groups {
		att := string(g.Attestation)
		if g.Deleted {
			att = "(deleted group)"
		}
		rows = append(rows, fmt.Sprintf("  %s %-16s %11s", theme.Fit(g.ID, 36), att, theme.Count(g.Records)))
	}
	return append(rows, fmt.Sprintf("  %s %-16s %11s", theme.Fit("(individual enrollments)", 36), "", theme.Count(c.EnrollmentRecords)))
}

// Stop ends a count under way when the view closes.
func (v *quotaView) Stop() { v.job.stop() }

// note is a muted explanation wrapped to the width: cut at the screen's edge
// it would lose its end.
func note(c *Common, text string) string {
	return c.Styles.Muted.Render(ansi.Wrap(text, max(c.Width, 1), " "))
}
