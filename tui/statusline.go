package tui

import (
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// statusLine keeps the last error or warning after its flash has gone, on
// a line above the footer, until a newer one replaces it or x clears it;
// the LastProblem key shows it in full.
type statusLine struct {
	text     string
	level    flashLevel
	at       time.Time
	expanded bool
}

// keepProblem records an error or a warning for the status line.
func (m *Model) keepProblem(level flashLevel, text string) {
	if level < levelWarning {
		return
	}
	m.status = statusLine{text: text, level: level, at: m.c.Now(), expanded: m.status.expanded}
}

// statusHeight is the lines the status line takes: none while empty or
// while the header's flash says the same.
func (m *Model) statusHeight() int {
	if m.status.text == "" || (m.flash == m.status.text && m.flashLvl == m.status.level) {
		return 0
	}
	return 1
}

// statusView is the status line: the problem on one line, cut to the width,
// saying which key shows it whole.
func (m *Model) statusView() string {
	s := m.status
	more := "  (" + m.c.Keys.LastProblem.Help().Key + " shows it in full)"
	text := strings.Join(strings.Fields(s.text), " ")
	line := s.level.glyph() + " " + s.at.UTC().Format("15:04:05") + " "
	if ansi.StringWidth(line+text+more) > m.width {
		text = ansi.Truncate(text, max(m.width-ansi.StringWidth(line+more), 1), "…")
	}
	return levelStyle(m.c.Styles, s.level).Render(theme.Fit(line+text+more, m.width))
}

// problemView is the last problem in full, wrapped, in place of the body.
func (m *Model) problemView() string {
	st := m.c.Styles
	s := m.status
	kind := "warning"
	if s.level == levelError {
		kind = "error"
	}
	k := m.c.Keys.LastProblem.Help().Key
	return st.Title.Render("Last "+kind+", at "+s.at.UTC().Format("15:04:05")+" UTC") + "\n\n" +
		levelStyle(st, s.level).Render(ansi.Wrap(s.text, max(m.c.Width, 1), " ")) + "\n\n" +
		st.Muted.Render(ansi.Wrap(":log lists every event of the session. x clears this line; "+k+", esc or any other key goes back.", max(m.c.Width, 1), " "))
}

// levelStyle is the style of a flash, a status line or a log entry of
// level l.
func levelStyle(st *Styles, l flashLevel) lipgloss.Style {
	return [...]lipgloss.Style{st.Flash, st.FlashInfo, st.FlashWarn, st.FlashError}[l]
}
