package tui

import (
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// form is a column of labelled text fields. A focused field takes every
// key; esc leaves the fields so the view's (and the root's) keys work, and
// tab or enter comes back in.
type form struct {
	c      *Common
	labels []string
	inputs []textinput.Model
	focus  int // -1: no field has the keys
	// secret fields (keys) are masked until revealed.
	secret   []int
	revealed bool
}

func newForm(c *Common, labels ...string) *form {
	f := &form{c: c, labels: labels, focus: -1}
	for range labels {
		in := textinput.New()
		in.Prompt = ""
		f.inputs = append(f.inputs, in)
	}
	return f
}

func (f *form) editing() bool { return f.focus >= 0 }

func (f *form) value(i int) string { return strings.TrimSpace(f.inputs[i].Value()) }

func (f *form) set(i int, v string) { f.inputs[i].SetValue(v) }

// focusOn gives field i the keys.
func (f *form) focusOn(i int) tea.Cmd {
	for j := range f.inputs {
		f.inputs[j].Blur()
	}
	f.focus = i
	if i < 0 {
		return nil
	}
	return f.inputs[i].Focus()
}

// mask hides the given fields' values (keys) until reveal.
func (f *form) mask(fields ...int) {
	f.secret = fields
	for _, i := range fields {
		f.inputs[i].EchoMode = textinput.EchoPassword
	}
}

// reveal shows or masks the secret fields again.
func (f *form) reveal() {
	f.revealed = !f.revealed
	mode := textinput.EchoPassword
	if f.revealed {
		mode = textinput.EchoNormal
	}
	for _, i := range f.secret {
		f.inputs[i].EchoMode = mode
	}
}

// revealKey reports whether msg toggles the masking: the Reveal binding,
// except a v typed into a field.
func (f *form) revealKey(msg tea.KeyPressMsg) bool {
	return len(f.secret) > 0 && f.matches(f.c.Keys.Reveal, msg)
}

// matches is b.Matches outside the fields and b.MatchesInField in one.
func (f *form) matches(b *Binding, msg tea.KeyPressMsg) bool {
	if f.editing() {
		return b.MatchesInField(msg)
	}
	return b.Matches(msg)
}

func (f *form) setWidth(w int) {
	for i := range f.inputs {
		f.inputs[i].SetWidth(max(w, 8))
	}
}

// paste puts pasted text into the focused field.
func (f *form) paste(msg tea.PasteMsg) (cmd tea.Cmd, changed bool) {
	if f.focus < 0 {
		return nil, false
	}
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	return cmd, true
}

// update handles navigation and typing; changed reports that a value moved.
func (f *form) update(msg tea.KeyPressMsg) (cmd tea.Cmd, changed bool) {
	k := f.c.Keys
	switch {
	case msg.String() == "esc":
		return f.focusOn(-1), false
	case msg.String() == "tab" || (msg.String() == "down" && f.focus >= 0):
		return f.focusOn((f.focus + 1) % len(f.inputs)), false
	case msg.String() == "shift+tab" || (msg.String() == "up" && f.focus >= 0):
		return f.focusOn((f.focus + len(f.inputs) - 1) % len(f.inputs)), false
	case f.focus < 0:
		if k.Submit.Matches(msg) {
			return f.focusOn(0), false
		}
		return nil, false
	}
	before := f.inputs[f.focus].Value()
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	return cmd, f.inputs[f.focus].Value() != before
}

// row renders field i with its label, and an optional note under it.
func (f *form) row(i, labelWidth int, note string) string {
	st := f.c.Styles
	label := st.Label.Render(fit(f.labels[i], labelWidth))
	marker := "  "
	if f.focus == i {
		marker = st.Key.Render("▸ ")
	}
	s := marker + label + " " + st.Input(f.inputs[i]).View()
	if note != "" {
		indent := "\n" + strings.Repeat(" ", labelWidth+3)
		s += indent + strings.ReplaceAll(note, "\n", indent)
	}
	return s
}

// errorNote is an error for row's note, wrapped to the space beside the
// labels: cut at the screen's edge it would hide what to do.
func (f *form) errorNote(text string, labelWidth int) string {
	w := max(f.c.Width-labelWidth-3, 10)
	lines := strings.Split(ansi.Wrap(text, w, " "), "\n")
	for i, l := range lines {
		lines[i] = f.c.Styles.Error.Render(l)
	}
	return strings.Join(lines, "\n")
}
