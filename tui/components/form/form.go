// Package form is a column of labelled text fields.
package form

import (
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// Binding is a key binding the form checks, in a field or outside.
type Binding interface {
	Matches(tea.KeyPressMsg) bool
	MatchesInField(tea.KeyPressMsg) bool
}

// Keys are the bindings the form handles itself.
type Keys struct {
	// Submit outside the fields gives the first field the keys; Reveal
	// toggles the masking of the secret fields.
	Submit, Reveal Binding
}

// Form is a column of labelled text fields. A focused field takes every
// key; esc leaves the fields so the view's (and the root's) keys work, and
// tab or enter comes back in.
type Form struct {
	styles *theme.Styles
	keys   Keys
	Labels []string
	Inputs []textinput.Model
	focus  int // -1: no field has the keys
	// secret fields (keys) are masked until revealed.
	secret   []int
	revealed bool
}

// New makes a form with one empty field per label, none focused.
func New(styles *theme.Styles, keys Keys, labels ...string) *Form {
	f := &Form{styles: styles, keys: keys, Labels: labels, focus: -1}
	for range labels {
		in := textinput.New()
		in.Prompt = ""
		f.Inputs = append(f.Inputs, in)
	}
	return f
}

// Focus is the field with the keys; -1 when none has them.
func (f *Form) Focus() int { return f.focus }

// Editing reports whether a field has the keys.
func (f *Form) Editing() bool { return f.focus >= 0 }

// Value is field i's text, trimmed.
func (f *Form) Value(i int) string { return strings.TrimSpace(f.Inputs[i].Value()) }

// Set puts v into field i.
func (f *Form) Set(i int, v string) { f.Inputs[i].SetValue(v) }

// FocusOn gives field i the keys.
func (f *Form) FocusOn(i int) tea.Cmd {
	for j := range f.Inputs {
		f.Inputs[j].Blur()
	}
	f.focus = i
	if i < 0 {
		return nil
	}
	return f.Inputs[i].Focus()
}

// Mask hides the given fields' values (keys) until reveal.
func (f *Form) Mask(fields ...int) {
	f.secret = fields
	for _, i := range fields {
		f.Inputs[i].EchoMode = textinput.EchoPassword
	}
}

// Reveal shows or masks the secret fields again.
func (f *Form) Reveal() {
	f.revealed = !f.revealed
	mode := textinput.EchoPassword
	if f.revealed {
		mode = textinput.EchoNormal
	}
	for _, i := range f.secret {
		f.Inputs[i].EchoMode = mode
	}
}

// RevealKey reports whether msg toggles the masking: the Reveal binding,
// except a v typed into a field.
func (f *Form) RevealKey(msg tea.KeyPressMsg) bool {
	return len(f.secret) > 0 && f.Matches(f.keys.Reveal, msg)
}

// Matches is b.Matches outside the fields and b.MatchesInField in one.
func (f *Form) Matches(b Binding, msg tea.KeyPressMsg) bool {
	if f.Editing() {
		return b.MatchesInField(msg)
	}
	return b.Matches(msg)
}

// SetWidth sets the width of every field.
func (f *Form) SetWidth(w int) {
	for i := range f.Inputs {
		f.Inputs[i].SetWidth(max(w, 8))
	}
}

// Paste puts pasted text into the focused field.
func (f *Form) Paste(msg tea.PasteMsg) (cmd tea.Cmd, changed bool) {
	if f.focus < 0 {
		return nil, false
	}
	f.Inputs[f.focus], cmd = f.Inputs[f.focus].Update(msg)
	return cmd, true
}

// Update handles navigation and typing; changed reports that a value moved.
func (f *Form) Update(msg tea.KeyPressMsg) (cmd tea.Cmd, changed bool) {
	k := f.keys
	switch {
	case msg.String() == "esc":
		return f.FocusOn(-1), false
	case msg.String() == "tab" || (msg.String() == "down" && f.focus >= 0):
		return f.FocusOn((f.focus + 1) % len(f.Inputs)), false
	case msg.String() == "shift+tab" || (msg.String() == "up" && f.focus >= 0):
		return f.FocusOn((f.focus + len(f.Inputs) - 1) % len(f.Inputs)), false
	case f.focus < 0:
		if k.Submit.Matches(msg) {
			return f.FocusOn(0), false
		}
		return nil, false
	}
	before := f.Inputs[f.focus].Value()
	f.Inputs[f.focus], cmd = f.Inputs[f.focus].Update(msg)
	return cmd, f.Inputs[f.focus].Value() != before
}

// Row renders field i with its label, and an optional note under it.
func (f *Form) Row(i, labelWidth int, note string) string {
	st := f.styles
	label := st.Label.Render(theme.Fit(f.Labels[i], labelWidth))
	marker := "  "
	if f.focus == i {
		marker = st.Key.Render("▸ ")
	}
	s := marker + label + " " + st.Input(f.Inputs[i]).View()
	if note != "" {
		indent := "\n" + strings.Repeat(" ", labelWidth+3)
		s += indent + strings.ReplaceAll(note, "\n", indent)
	}
	return s
}

// ErrorNote is an error for Row's note, wrapped to the space beside the
// labels: cut at the screen's edge it would hide what to do.
func (f *Form) ErrorNote(text string, labelWidth, width int) string {
	w := max(width-labelWidth-3, 10)
	lines := strings.Split(ansi.Wrap(text, w, " "), "\n")
	for i, l := range lines {
		lines[i] = f.styles.Error.Render(l)
	}
	return strings.Join(lines, "\n")
}
