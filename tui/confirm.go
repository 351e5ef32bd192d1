package tui

import (
	"strings"

	"charm.land/bubbles/v2/progress"
	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
)

// choice is one answer of a confirmation; any key not listed cancels.
type choice struct {
	key, label string
	run        func() tea.Cmd
}

// confirm is a yes/no (or yes/other/no) question that blocks the view's
// other keys until answered. Only the listed keys confirm.
type confirm struct {
	text    string
	choices []choice
}

// toggleConfirm asks before disabling what is enabled (with disable as the
// question) or enabling what is disabled (with enable); yes runs set with the
// status confirmed.
func toggleConfirm(status dps.ProvisioningStatus, disable, enable string, set func(dps.ProvisioningStatus) tea.Cmd) *confirm {
	next, label, text := dps.ProvisioningDisabled, "disable it", disable
	if status == dps.ProvisioningDisabled {
		next, label, text = dps.ProvisioningEnabled, "enable it", enable
	}
	return &confirm{text: text, choices: []choice{{"y", label, func() tea.Cmd { return set(next) }}}}
}

// answer runs the chosen action; ok is false when the key cancelled.
func (c *confirm) answer(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	for _, ch := range c.choices {
		if msg.String() == ch.key {
			return ch.run(), true
		}
	}
	return flashInfo("cancelled"), false
}

func (c *confirm) view(cm *Common) string {
	st := cm.Styles
	lines := []string{c.text, ""}
	for _, ch := range c.choices {
		lines = append(lines, st.Key.Render(ch.key)+"  "+ch.label)
	}
	lines = append(lines, st.Muted.Render("any other key cancels"))
	return st.Dialog.Width(min(cm.Width, 90)).Render(strings.Join(lines, "\n"))
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
