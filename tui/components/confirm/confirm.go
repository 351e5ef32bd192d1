// Package confirm is a question that blocks a view's other keys until
// answered.
package confirm

import (
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// Choice is one answer of a Dialog; any key not listed cancels.
type Choice struct {
	Key, Label string
	Run        func() tea.Cmd
}

// Dialog is a yes/no (or yes/other/no) question that blocks the view's
// other keys until answered. Only the listed keys confirm.
type Dialog struct {
	Text    string
	Choices []Choice
}

// Answer runs the chosen action; ok is false when the key cancelled.
func (d *Dialog) Answer(msg tea.KeyPressMsg) (cmd tea.Cmd, ok bool) {
	for _, ch := range d.Choices {
		if msg.String() == ch.Key {
			return ch.Run(), true
		}
	}
	return nil, false
}

// View renders the question and its choices in a dialog at most width wide.
func (d *Dialog) View(st *theme.Styles, width int) string {
	lines := []string{d.Text, ""}
	for _, ch := range d.Choices {
		lines = append(lines, st.Key.Render(ch.Key)+"  "+ch.Label)
	}
	lines = append(lines, st.Muted.Render("any other key cancels"))
	return st.Dialog.Width(min(width, 90)).Render(strings.Join(lines, "\n"))
}
