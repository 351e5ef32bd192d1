package tui

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
	"github.com/dpsconsole/dpsconsole/tui/components/timeline"
)

// testCommon is a Common with fixed size, colourless styles and a fixed clock.
func testCommon(t testing.TB, w, h int) *Common {
	t.Helper()
	return &Common{
		Ctx: context.Background(), Styles: theme.NewStyles(true, true), Keys: DefaultKeyMap(false),
		Target: &Target{Name: "test"}, Logger: slog.New(slog.DiscardHandler), NoColor: true,
		Width: w, Height: h, Now: func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) },
	}
}

func press(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	}
	if strings.HasPrefix(s, "ctrl+") {
		return tea.KeyPressMsg{Code: rune(s[5]), Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// typeText sends each rune as a key press to update.
func typeText(update func(tea.Msg) tea.Cmd, s string) {
	for _, r := range s {
		update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// drain runs a Cmd as the Program would (batches concurrently), feeds every
// routed result to update and drains what that returns in turn. Messages
// that are not results (cursor blinks, debounce and countdown ticks) are
// dropped, and Cmds slower than cmdTimeout are abandoned; depth bounds
// re-armed listeners.
func drain(t testing.TB, update func(tea.Msg) tea.Cmd, cmd tea.Cmd, depth int) {
	t.Helper()
	if cmd == nil || depth <= 0 {
		return
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-done:
	case <-time.After(cmdTimeout):
		return
	}
	switch m := msg.(type) {
	case tea.BatchMsg:
		for _, c := range m {
			drain(t, update, c, depth)
		}
	case routed:
		if _, tick := m.msg.(timeline.TickMsg); !tick {
			drain(t, update, update(m.msg), depth-1)
		}
	case flashMsg:
		update(m)
	}
}

// cmdTimeout is how long drain waits for one Cmd.
const cmdTimeout = 5 * time.Second

// plain strips ANSI and trailing spaces, for golden files and asserts.
func plain(s string) string {
	lines := strings.Split(ansi.Strip(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
