package tui

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// tmuxTerm drives the real binary inside a tmux session.
type tmuxTerm struct {
	t      *testing.T
	socket string
}

func (m *tmuxTerm) tmux(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", m.socket}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (m *tmuxTerm) capture() string { return m.tmux("capture-pane", "-p", "-t", "console") }

// send sends tmux key names; a pause after each keeps esc from merging with
// the next key into alt+key.
func (m *tmuxTerm) send(keys ...string) {
	for _, k := range keys {
		m.tmux("send-keys", "-t", "console", k)
		time.Sleep(150 * time.Millisecond)
	}
}

func (m *tmuxTerm) typeText(s string) { m.tmux("send-keys", "-t", "console", "-l", s) }

func (m *tmuxTerm) waitFor(step string, want ...string) string {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := m.capture()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s: the terminal never showed %q:\n%s", step, want, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildConsole builds the real dpsconsole binary into dir, for a test that
// runs it in a real terminal.
func buildConsole(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "dpsconsole")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/dpsconsole/dpsconsole/cmd/dpsconsole").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestTerminalFlowUnderTmux builds the real binary and runs it in a real
// terminal (tmux) on its embedded emulator, through the same flow as the
// teatest flow. With -update it also refreshes the README's screen captures.
func TestTerminalFlowUnderTmux(t *testing.T) {
	ensureTmux(t)
	dir := t.TempDir()
	bin := buildConsole(t, dir)
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("dpsconsole-test-%d", os.Getpid())}
	cmdline := fmt.Sprintf("env -u DPS_CONNECTION_STRING TERM=xterm-256color %s --state-dir %s; sleep 60", bin, filepath.Join(dir, "state"))
	m.tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", cmdline)
	t.Cleanup(func() { exec.Command("tmux", "-L", m.socket, "kill-server").Run() })

	captures := map[string]string{}
	captures["groups"] = m.waitFor("browse", "hashed-fleet", emulator.TutorialGroupID, "2/2", "36")
	m.send("/")
	m.typeText("legacy")
	m.waitFor("filter", "1/2")
	m.send("Enter", "Enter")
	m.waitFor("open group", "Group mylegacydevices", "Primary key ••••••••")

	m.send("x")
	m.waitFor("derive from the group", "key loaded from group mylegacydevices")
	m.typeText(flowRegID)
	captures["derive"] = m.waitFor("derive", tutorialDeviceKey)
	m.send("Escape", "Escape")
	m.waitFor("back", "REGISTRATION ID")

	m.send("s")
	m.waitFor("simulate", "Simulate device")
	m.typeText(flowRegID)
	m.send("Enter", "Enter")
	captures["simulate"] = m.waitFor("assigned", "poll 1", "✓ assigned → hub")

	m.send("Escape", "r")
	captures["group"] = m.waitFor("record listed", flowRegID, "1/1")
	m.send("Space", "d")
	m.waitFor("confirm", "Delete 1 marked registration record")
	m.send("y")
	m.waitFor("deleted", "deleted 1 registration record", "0/0")
	m.send(":")
	m.typeText("cleanup")
	m.send("Enter")
	captures["cleanup"] = m.waitFor("cleanup", "Orphaned registration records", "no-enrollment")
	m.send("q") // the shell's sleep keeps the pane open after the console exits
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(m.capture(), "Enrollment groups"); {
		if time.Now().After(deadline) {
			t.Fatalf("q should leave the console:\n%s", m.capture())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The console logs to its state dir, never to the terminal.
	if fi, err := os.Stat(filepath.Join(dir, "state", "dpsconsole.log")); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("log file: %v %v", fi, err)
	}
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		updateREADMECaptures(t, captures)
	}
}

const (
	capturesStart = "<!-- console-captures: refreshed by `go test ./tui -run TestTerminalFlowUnderTmux -update` -->\n"
	capturesEnd   = "<!-- end console-captures -->"
)

func updateREADMECaptures(t *testing.T, captures map[string]string) {
	const path = "../README.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i, j := strings.Index(readme, capturesStart), strings.Index(readme, capturesEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no console-captures markers")
	}
	var b strings.Builder
	for _, v := range []struct{ key, title string }{
		{"groups", "Enrollment groups (home)"}, {"group", "A group and its registration records"},
		{"derive", "Derive, with the shell equivalents"}, {"simulate", "Simulate: the live registration timeline"},
		{"cleanup", "Clean-up: orphaned records found on the demo data"},
	} {
		fmt.Fprintf(&b, "**%s**\n\n```text\n%s\n```\n\n", v.title, strings.TrimRight(trimBlankLines(captures[v.key]), "\n"))
	}
	readme = readme[:i+len(capturesStart)] + b.String() + readme[j:]
	if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
}

// trimBlankLines drops trailing spaces and collapses the empty rows of a
// mostly empty table to one.
func trimBlankLines(s string) string {
	var out []string
	blank := 0
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " ")
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// ensureTmux installs tmux through the project's own script when it is
// missing, so a fresh machine needs nothing but `go test ./...`.
func ensureTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err == nil {
		return
	}
	out, err := exec.Command("bash", "../scripts/install-test-deps.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("tmux is missing and scripts/install-test-deps.sh could not install it: %v\n%s", err, out)
	}
}
