package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// reportView shows the end of a deletion in full: its summary, then every
// failure, each wrapped rather than cut, scrolled with the list keys.
type reportView struct {
	c        *Common
	vid      int
	title    string
	summary  []string
	failures []string
	top      int // first line shown
}

func newReportView(c *Common, title string, summary, failures []string) *reportView {
	return &reportView{c: c, vid: c.newID(), title: title, summary: summary, failures: failures}
}

func (v *reportView) id() int          { return v.vid }
func (v *reportView) Title() string    { return v.title }
func (v *reportView) Init() tea.Cmd    { return nil }
func (v *reportView) Editing() bool    { return false }
func (v *reportView) Busy() bool       { return false }
func (v *reportView) SetSize(w, h int) { v.clamp() }
func (v *reportView) Status() string   { return fmt.Sprintf("%s failures", theme.Count(len(v.failures))) }
func (v *reportView) Hints() []*Binding {
	k := v.c.Keys
	return []*Binding{k.Down, k.Up, k.PageDown, k.PageUp}
}

// lines is the whole report at the current width.
func (v *reportView) lines() []string {
	st := v.c.Styles
	out := append([]string{}, v.summary...)
	if len(v.failures) > 0 {
		out = append(out, "", st.Title.Render(fmt.Sprintf("%s failures", theme.Count(len(v.failures)))))
	}
	wrap := st.Error.Width(max(v.c.Width-4, 20))
	for i, f := range v.failures {
		text := strings.Split(wrap.Render(fmt.Sprintf("%d. %s", i+1, f)), "\n")
		for _, l := range text {
			out = append(out, "  "+l)
		}
	}
	return out
}

// rows is how many report lines fit above the position line.
func (v *reportView) rows() int { return max(v.c.Height-1, 1) }

// clamp keeps top where a full page of the report still shows.
func (v *reportView) clamp() { v.top = max(min(v.top, len(v.lines())-v.rows()), 0) }

func (v *reportView) Update(msg tea.Msg) tea.Cmd {
	if key, ok := msg.(tea.KeyPressMsg); ok {
		v.c.Keys.scrollKey(key, &v.top, v.rows(), len(v.lines()))
		v.clamp()
	}
	return nil
}

func (v *reportView) View() string {
	lines := v.lines()
	end := min(v.top+v.rows(), len(lines))
	shown := lines[v.top:end]
	pos := fmt.Sprintf("lines %d–%d of %d  (↑/↓ pgup/pgdn scroll, esc back)", v.top+1, end, len(lines))
	return strings.Join(shown, "\n") + "\n" + v.c.Styles.Muted.Render(pos)
}
