package tui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps/fleet"
	"github.com/dpsconsole/dpsconsole/tui/components/chart"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
	"github.com/dpsconsole/dpsconsole/tui/components/timeline"
)

// histHeight is the latency histogram's height in lines.
const histHeight = 3

func (v *fleetView) View() string {
	if v.confirm != nil {
		return v.confirm.View(v.c.Styles, v.c.Width)
	}
	if !v.running && v.summary == nil {
		return v.formView()
	}
	return v.dashboard()
}

func (v *fleetView) formView() string {
	st := v.c.Styles
	var lines []string
	for i := range v.f.Inputs {
		note := ""
		if i == v.field && v.err != "" {
			note = v.f.ErrorNote(v.err, 12, v.c.Width)
		}
		lines = append(lines, v.f.Row(i, 12, note))
	}
	if v.err != "" && v.field < 0 {
		lines = append(lines, "", errorText(v.c, v.err))
	}
	if v.preparing {
		lines = append(lines, "", st.Muted.Render("reading the group's key and checking for existing registration records…"))
	} else {
		lines = append(lines, "", st.Muted.Render("Registers Prefix-Start … with keys derived from the group's primary key (its secondary with Secondary true, ←/→ toggles; or the key in Key file), as `dpsconsole fleet` does."))
	}
	return strings.Join(lines, "\n")
}

// dashboard draws the run: progress (or the summary), the rate and the
// 429s over time, the latency histogram, the counts and the devices table
// in the lines left. Only what fits is drawn.
func (v *fleetView) dashboard() string {
	st := v.c.Styles
	w, b := v.c.Width, v.board
	var lines []string
	lines = append(lines, v.headline()...)
	label := func(s string) string { return st.Label.Render(theme.Fit(s, 9)) }
	// The numbers at the right edge, the sparkline (newest right) between.
	spark := func(name string, series []int, note string) string {
		return label(name) + chart.Spark(series, max(w-9-len([]rune(note))-1, 10)) + " " + st.Muted.Render(note)
	}
	lines = append(lines, spark("rate/s", b.PerSecond, fmt.Sprintf("now %.1f, peak %d", b.Rate, chart.Max(b.PerSecond))))
	throttle := fmt.Sprintf("%d in all", b.Throttled)
	if b.Throttled > 0 {
		throttle += fmt.Sprintf(", waits %s, longest %s", b.ThrottleWait, b.MaxRetryAfter)
	}
	lines = append(lines, spark("429/s", b.Throttles, throttle))
	lines = append(lines, "")
	lines = append(lines, v.histogram()...)
	lines = append(lines, "")
	lines = append(lines, v.counts()...)
	if rest := v.c.Height - len(lines) - 1; rest >= 2 {
		lines = append(lines, "")
		lines = append(lines, v.deviceTable(rest)...)
	}
	for i, l := range lines {
		lines[i] = theme.Fit(l, w)
	}
	return strings.Join(lines, "\n")
}

// headline is the progress bar while running, the summary at the end.
func (v *fleetView) headline() []string {
	st := v.c.Styles
	b := v.board
	pct := 0.0
	if b.Total > 0 {
		pct = float64(b.Done) / float64(b.Total)
	}
	barW := min(max(v.c.Width-70, 8), 20) // the counts after it fit 80 columns
	filled := int(pct * float64(barW))
	bar := strings.Repeat("█", filled) + strings.Repeat("░", barW-filled)
	if s := v.summary; s != nil {
		state := st.OK.Render("complete")
		if s.Interrupted {
			state = st.Warning.Render("stopped")
		}
		out := []string{fmt.Sprintf("Run %s %s: %d of %d finished (%d in this run), %d pending · assigned %d, not assigned %d · %s",
			s.Run, state, s.Finished, s.Total, s.ThisRun, s.Pending, s.Assigned, s.Failed, s.Elapsed.Round(time.Millisecond))}
		switch {
		case v.runErr != "":
			out = append(out, errorText(v.c, v.runErr))
		case s.Pending > 0:
			out = append(out, st.Muted.Render(fmt.Sprintf("r resumes the run from its log: the %d pending devices, none registered twice", s.Pending)))
		case len(s.Failures) > 0:
			f := s.Failures[0]
			out = append(out, st.Error.Render(fmt.Sprintf("%d × %s (e.g. %s)", f.Count, f.Error, strings.Join(f.Examples, ", "))))
		default:
			out = append(out, st.Muted.Render("enter on a device shows its timeline; tab starts another run"))
		}
		return out
	}
	head := fmt.Sprintf("%s %d/%d (%.0f%%)  %.1f/s", bar, b.Done, b.Total, 100*pct, b.Rate)
	if b.ETA > 0 {
		head += "  ETA " + b.ETA.Round(time.Second).String()
	}
	head += fmt.Sprintf("  flight %d  assigned %d  failed %d", b.InFlight, b.Assigned, b.Failed)
	sp := v.start.spec
	sub := st.Muted.Render(fmt.Sprintf("%s … %s over %s, %s · elapsed %s · ctrl+x or s stops",
		sp.RegistrationID(0), sp.RegistrationID(sp.Count-1), sp.Transport, v.start.schedule, b.Elapsed.Round(time.Second)))
	switch {
	case v.stopping:
		sub = st.Warning.Render("stopping: no new devices; the registrations in flight finish…")
	case v.escaped:
		sub = st.Warning.Render("the run is still going: ctrl+x or s stops it, then esc leaves")
	}
	return []string{head, sub}
}

// histogram draws the latency bars with p50, p95 and p99 marked under them.
func (v *fleetView) histogram() []string {
	st := v.c.Styles
	h := v.board.Histogram
	lat := v.board.Latency
	if len(h) == 0 {
		return []string{st.Label.Render("latency") + st.Muted.Render("  no device assigned yet")}
	}
	colW := max(min((v.c.Width-10)/len(h), 3), 1)
	counts := make([]int, len(h))
	for i, bk := range h {
		counts[i] = bk.Count
	}
	cols := chart.Columns(counts, histHeight, colW)
	lines := make([]string, 0, histHeight+2)
	for i, c := range cols {
		l := "         "
		if i == 0 {
			l = st.Label.Render("latency  ")
		}
		lines = append(lines, l+c)
	}
	marks := []rune(strings.Repeat(" ", len(h)*colW))
	for _, m := range []struct {
		d time.Duration
		r rune
	}{{lat.P50, '5'}, {lat.P95, '9'}, {lat.P99, '^'}} {
		for i, bk := range h {
			if m.d >= bk.Lower && (m.d < bk.Upper || i == len(h)-1) {
				marks[i*colW] = m.r
				break
			}
		}
	}
	lines = append(lines, "         "+st.Key.Render(string(marks)))
	lines = append(lines, st.Muted.Render(fmt.Sprintf("         %s … %s   5 p50 %s  9 p95 %s  ^ p99 %s  max %s",
		ms(h[0].Lower), ms(h[len(h)-1].Upper), ms(lat.P50), ms(lat.P95), ms(lat.P99), ms(lat.Max))))
	return lines
}

// counts are the devices by status and substatus beside those by hub.
func (v *fleetView) counts() []string {
	st := v.c.Styles
	b := v.board
	const shown = 3
	left := []string{st.Title.Render("by status")}
	for i, s := range b.ByStatus {
		if i == shown {
			left = append(left, st.Muted.Render(fmt.Sprintf("… %d more", len(b.ByStatus)-shown)))
			break
		}
		name := s.Status
		if s.Substatus != "" {
			name += "/" + s.Substatus
		}
		left = append(left, fmt.Sprintf("%6d %s", s.Count, name))
	}
	right := []string{st.Title.Render("by hub")}
	for i, h := range b.ByHub {
		if i == shown {
			right = append(right, st.Muted.Render(fmt.Sprintf("… %d more", len(b.ByHub)-shown)))
			break
		}
		right = append(right, fmt.Sprintf("%6d %s", h.Count, h.Hub))
	}
	half := v.c.Width / 2
	var out []string
	for i := range max(len(left), len(right)) {
		l, r := "", ""
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		out = append(out, theme.Fit(l, half-1)+" "+r)
	}
	return out
}

// rows are the devices table: the failed first, then the slowest.
func (v *fleetView) rows() []fleet.DeviceTrace {
	return append(append([]fleet.DeviceTrace(nil), v.board.NotAssigned...), v.board.Slowest...)
}

// deviceTable draws the rows that fit in height lines, the cursor's in view.
func (v *fleetView) deviceTable(height int) []string {
	st := v.c.Styles
	rows := v.rows()
	title := fmt.Sprintf("failed (%d) and slowest devices · enter shows a timeline", v.board.Failed)
	out := []string{st.Title.Render(title)}
	if len(rows) == 0 {
		return append(out, st.Muted.Render("none finished yet"))
	}
	v.cursor = min(v.cursor, len(rows)-1)
	n := height - 1
	first := max(min(v.cursor-n/2, len(rows)-n), 0)
	for i := first; i < min(first+n, len(rows)); i++ {
		r := rows[i]
		what := r.Hub
		if r.Outcome != fleet.OutcomeAssigned {
			what = r.Error
		}
		took := "—"
		if r.Latency > 0 {
			took = ms(r.Latency)
		}
		line := fmt.Sprintf("%-22s %-9s %8s %3d× 429  %s", theme.Fit(r.ID, 22), r.Outcome, took, r.Throttled, what)
		if i == v.cursor {
			line = st.Selected.Render(theme.Fit(line, v.c.Width))
		} else if r.Outcome != fleet.OutcomeAssigned {
			line = st.Error.Render(line)
		}
		out = append(out, line)
	}
	return out
}

// fleetDeviceView is one device's timeline from the run, drawn by the
// timeline widget :simulate uses, under a line with its outcome.
type fleetDeviceView struct {
	c   *Common
	vid int
	tr  fleet.DeviceTrace
	tl  *timeline.Model
	top int
}

func newFleetDeviceView(c *Common, tr fleet.DeviceTrace) *fleetDeviceView {
	v := &fleetDeviceView{c: c, vid: c.newID(), tr: tr}
	v.tl = newTimeline(c, v.vid)
	steps := make([]timeline.Step, len(tr.Events))
	for i, e := range tr.Events {
		steps[i] = timeline.Step{At: e.At, Text: e.What, Err: e.Err}
	}
	run := timeline.Run{RegID: tr.ID, Elapsed: tr.Latency, Steps: steps}
	if len(steps) > 0 {
		run.Started = steps[0].At
	}
	v.tl.Show(run)
	return v
}

func (v *fleetDeviceView) id() int           { return v.vid }
func (v *fleetDeviceView) Title() string     { return v.tr.ID }
func (v *fleetDeviceView) Init() tea.Cmd     { return nil }
func (v *fleetDeviceView) SetSize(int, int)  {}
func (v *fleetDeviceView) Hints() []*Binding { return []*Binding{v.c.Keys.Up, v.c.Keys.Down} }
func (v *fleetDeviceView) Editing() bool     { return false }
func (v *fleetDeviceView) Busy() bool        { return false }
func (v *fleetDeviceView) Status() string    { return string(v.tr.Outcome) }
func (v *fleetDeviceView) Update(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		v.c.Keys.scrollKey(k, &v.top, v.page(), len(v.tr.Events))
		v.top = max(min(v.top, len(v.tr.Events)-v.page()), 0)
	}
	return nil
}

// page is how many steps fit under the header.
func (v *fleetDeviceView) page() int { return max(v.c.Height-3, 1) }

func (v *fleetDeviceView) View() string {
	tr := v.tr
	head := fmt.Sprintf("%s: %s in %s", tr.ID, tr.Outcome, ms(tr.Latency))
	if tr.Hub != "" {
		head += " to " + tr.Hub
	}
	if tr.Throttled > 0 {
		head += fmt.Sprintf(", throttled %d×", tr.Throttled)
	}
	steps := strings.Split(v.tl.View(v.c.Styles, v.c.Width), "\n")
	steps = steps[min(v.top, len(steps)):]
	lines := append([]string{v.c.Styles.Title.Render(head), ""}, steps[:min(len(steps), v.page())]...)
	return strings.Join(lines, "\n")
}

// ms is a latency for the dashboard: milliseconds below a second.
func ms(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
