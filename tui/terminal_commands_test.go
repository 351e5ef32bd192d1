package tui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// TestTerminalColonSwitchesUnderTmux: in a real terminal, `:group NAME`
// (completed with tab) opens that group, the palette runs a command, and a
// later session recalls the line with ↑.
func TestTerminalColonSwitchesUnderTmux(t *testing.T) {
	ensureTmux(t)
	dir := t.TempDir()
	bin := buildConsole(t, dir)
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("dpsconsole-cmd-test-%d", os.Getpid())}
	state := filepath.Join(dir, "state")
	cmdline := fmt.Sprintf("env -u DPS_CONNECTION_STRING TERM=xterm-256color %s --state-dir %s; sleep 60", bin, state)
	m.tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", cmdline)
	t.Cleanup(func() { exec.Command("tmux", "-L", m.socket, "kill-server").Run() })

	m.waitFor("home", emulator.DemoHashedGroup, "2/2")
	m.send(":")
	m.typeText("group hash")
	m.waitFor("completion", "group hashed-fleet")
	m.send("Tab", "Enter")
	m.waitFor(":group NAME", "Group "+emulator.DemoHashedGroup, "REGISTRATION ID", "fleet-sensor")
	m.send("o")
	m.waitFor("sort", "REGISTRATION ID ↑", "sorted by REGISTRATION ID ↑")

	m.send("C-p")
	m.typeText("cleanup")
	m.waitFor("palette", "▸ :cleanup")
	m.send("Enter")
	m.waitFor("palette runs", "Orphaned registration records")

	m.send(":")
	m.typeText("group nosuch")
	m.send("Enter")
	m.waitFor("bad name", `there is no enrollment group "nosuch"`)
	m.send("q")
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(m.capture(), "dpsconsole emulator"); {
		if time.Now().After(deadline) {
			t.Fatalf("q should leave the console:\n%s", m.capture())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The next session recalls the lines typed.
	// The same pane again (not kill-session and new-session: the server
	// exits with its last session and a new-session racing that fails).
	m.tmux("respawn-pane", "-k", "-t", "console", cmdline)
	m.waitFor("home again", emulator.DemoHashedGroup)
	m.send(":", "Up", "Up", "Up") // group nosuch, cleanup (run from the palette), then this
	m.waitFor("history", ":group hashed-fleet")
	if fi, err := os.Stat(filepath.Join(state, historyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("history file: %v %v", fi, err)
	}
}
