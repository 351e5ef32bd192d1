package tui

import (
	"context"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// TestTinyTerminalsNeverPanic resizes every view, loaded against the
// emulator, to tiny sizes and renders it, with help and the command line too.
func TestTinyTerminalsNeverPanic(t *testing.T) {
	target, _ := startEmulator(t, 0)
	m := New(context.Background(), Options{Target: target})
	update := func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }
	update(tea.WindowSizeMsg{Width: 120, Height: 40})
	drain(t, update, m.Init(), 50)
	views := []view{newGroupsView(m.c), newGroupView(m.c, emulator.DemoHashedGroup), newEnrollmentsView(m.c),
		newGroupFormView(m.c, 0), newDeriveView(m.c, emulator.DemoHashedGroup, "dev-1"), newSimulateView(m.c, emulator.DemoHashedGroup, "dev-1"),
		newTutorialView(m.c), newCleanupView(m.c)}
	sizes := [][2]int{{10, 3}, {0, 0}, {1, 1}, {3, 10}, {2, 0}, {0, 5}, {20, 4}}
	for _, v := range views {
		drain(t, update, m.push(v), 50)
		for _, size := range sizes {
			update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			for _, mode := range []string{"", "help", "cmd"} {
				m.showHelp, m.cmdMode = mode == "help", mode == "cmd"
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("%s at %dx%d (%s): panic: %v", v.Title(), size[0], size[1], mode, r)
						}
					}()
					_ = m.View()
				}()
			}
			m.showHelp, m.cmdMode = false, false
		}
		update(tea.WindowSizeMsg{Width: 120, Height: 40})
	}
	// Views opened and loaded while the terminal is tiny, with a confirmation up.
	for _, size := range sizes {
		update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for _, v := range []view{newGroupsView(m.c), newGroupView(m.c, emulator.DemoHashedGroup), newEnrollmentsView(m.c), newTutorialView(m.c), newCleanupView(m.c)} {
			drain(t, update, m.push(v), 50)
			for _, k := range []string{"down", "ctrl+a", "space", "d"} {
				drain(t, update, update(press(k)), 50)
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("%s opened at %dx%d, after %s: panic: %v", v.Title(), size[0], size[1], k, r)
						}
					}()
					_ = m.View()
				}()
			}
			update(press("n")) // cancel a confirmation
			update(press("esc"))
		}
	}
}
