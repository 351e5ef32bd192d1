package tui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// startTmuxConsole builds the real binary and runs it in a tmux session of
// w×h on its embedded emulator (demo data), as TestTerminalFlowUnderTmux
// does.
func startTmuxConsole(t *testing.T, w, h int) *tmuxTerm {
	t.Helper()
	ensureTmux(t)
	dir := t.TempDir()
	bin := buildConsole(t, dir)
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("dpsconsole-lists-%d-%s", os.Getpid(), t.Name())}
	cmdline := fmt.Sprintf("env -u DPS_CONNECTION_STRING TERM=xterm-256color %s --state-dir %s; sleep 60", bin, filepath.Join(dir, "state"))
	m.tmux("new-session", "-d", "-s", "console", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), cmdline)
	t.Cleanup(func() { exec.Command("tmux", "-L", m.socket, "kill-server").Run() })
	return m
}

// TestTerminalCtrlAUnderAFilterMarksOnlyTheShown is one of issue #10's
// data-loss points in a real terminal: with /sensor-00 showing 9 of hashed-fleet's
// 36 records, ctrl+a then d offers to delete those 9, not 36; A is the
// explicit every-record action and its dialog says the filter does not
// limit it. Both dialogs are cancelled and nothing is deleted.
func TestTerminalCtrlAUnderAFilterMarksOnlyTheShown(t *testing.T) {
	m := startTmuxConsole(t, 120, 40)
	m.waitFor("browse", emulator.DemoHashedGroup, "2/2", "36")
	m.send("Enter")
	m.waitFor("open group", "Group hashed-fleet", "36/36")
	m.send("/")
	m.typeText("sensor-00") // not "00": a hub port may hold it
	m.waitFor("filter", "9/36")
	m.send("Enter", "C-a")
	m.waitFor("marked", "9 marked")
	m.send("d")
	s := m.waitFor("confirm", "Delete 9 marked registration records of hashed-fleet?")
	if strings.Contains(s, "Delete ALL") {
		t.Fatalf("ctrl+a under a filter offered to delete every record:\n%s", s)
	}
	m.send("n")
	m.waitFor("cancelled", "cancelled", "9/36")

	m.send("A")
	m.waitFor("every record", "all 36 records of hashed-fleet marked")
	m.send("d")
	m.waitFor("confirm every record", "Delete ALL 36 registration records of hashed-fleet", "does not limit this")
	m.send("n")
	m.waitFor("cancelled again", "cancelled", "all 36 marked")
	m.send("Escape", "Escape") // clear the filter, back home: the count is untouched
	s = m.waitFor("home", "2/2")
	if row := lineWith(s, emulator.DemoHashedGroup); !strings.HasSuffix(row, " 36") {
		t.Fatalf("hashed-fleet should still count 36 records: %q", row)
	}
	m.send("q")
}
