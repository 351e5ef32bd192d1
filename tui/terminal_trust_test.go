package tui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
)

// consoleExited is what the pane shows once the console process has ended.
const consoleExited = "CONSOLE-EXITED"

// startConsole runs the binary in its own tmux server on a state dir.
func startConsole(t *testing.T, bin, stateDir, name string, args ...string) *tmuxTerm {
	t.Helper()
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("dpsconsole-%s-%d", name, os.Getpid())}
	cmdline := fmt.Sprintf("env -u DPS_CONNECTION_STRING TERM=xterm-256color %s --state-dir %s %s; echo %s; sleep 60",
		bin, stateDir, strings.Join(args, " "), consoleExited)
	m.tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", cmdline)
	t.Cleanup(func() { exec.Command("tmux", "-L", m.socket, "kill-server").Run() })
	return m
}

// quit leaves the console and waits for its process to end, so the
// emulator's data dir is free to be opened by the test.
func (m *tmuxTerm) quit() {
	m.t.Helper()
	m.send("q")
	m.waitFor("quit", consoleExited)
}

// openLegacyGroup opens mylegacydevices from the groups list.
func (m *tmuxTerm) openLegacyGroup() {
	m.t.Helper()
	m.send("/")
	m.typeText("legacy")
	m.waitFor("filter", "1/2")
	m.send("Enter", "Enter")
	m.waitFor("open group", "Group mylegacydevices", "REGISTRATION ID")
}

// TestTerminalTrustUnderTmux runs the real binary in a real terminal for
// the data-loss points of issue #10: the tutorial deletes only what it
// created, and --readonly refuses simulate, telemetry and the tutorial.
// After each run the test opens the emulator's data itself to check.
func TestTerminalTrustUnderTmux(t *testing.T) {
	ensureTmux(t)
	dir := t.TempDir()
	bin := buildConsole(t, dir)
	ctx := context.Background()

	t.Run("tutorial deletes only its own", func(t *testing.T) {
		state := filepath.Join(dir, "state-tutorial")
		m := startConsole(t, bin, state, "tutorial")
		m.waitFor("browse", "mylegacydevices", "2/2")
		// The set-up: the docs' ID registered through mylegacydevices.
		m.openLegacyGroup()
		m.send("s")
		m.waitFor("simulate", "Simulate device")
		m.typeText(tutorialDocsID)
		m.send("Enter", "Enter")
		m.waitFor("assigned", "✓ assigned → hub")
		m.send("Escape")
		m.waitFor("back", "REGISTRATION ID")

		m.send(":")
		m.typeText("tutorial")
		m.send("Enter")
		m.waitFor("tutorial", "[▸] 1. Create a symmetric-key enrollment group")
		m.send("Enter")
		s := m.waitFor("group", "[✓] 1.", "[▸] 2.")
		if strings.Contains(s, "      "+tutorialDocsID) {
			t.Fatalf("the tutorial offers the docs' ID, a real device here:\n%s", s)
		}
		m.send("C-u")
		m.typeText(tutorialDocsID)
		m.send("Enter")
		m.waitFor("refused", tutorialDocsID+" already has a registration record", "choose another")
		const ownID = "tmux-tutorial-device-1"
		m.send("C-u")
		m.typeText(ownID)
		m.send("Enter")
		m.waitFor("id", "[✓] 2.", "[▸] 3.")
		m.send("Enter")
		m.waitFor("derive", "[✓] 3.")
		m.send("Enter")
		m.waitFor("provision", "[✓] 4.", "✓ assigned → hub")
		m.send("Enter")
		m.waitFor("telemetry", "[✓] 5.", "1 message accepted")
		m.send("Enter")
		m.waitFor("confirm", "[✓] 6.")
		m.send("Enter")
		m.waitFor("clean up", "[✓] 7.", "deleted record "+ownID+",", "then hub device "+ownID)
		m.quit()

		target, _ := startEmulatorAt(t, filepath.Join(state, "emulator"), 0)
		real, err := target.Service.GetRegistrationState(ctx, tutorialDocsID)
		if err != nil {
			t.Fatalf("the tutorial deleted the existing record of %s: %v", tutorialDocsID, err)
		}
		if err := hubDevice(t, target, real.AssignedHub, tutorialDocsID); err != nil {
			t.Fatalf("the tutorial deleted the existing hub device %s: %v", tutorialDocsID, err)
		}
		if _, err := target.Service.GetRegistrationState(ctx, ownID); !dps.IsNotFound(err) {
			t.Fatalf("the tutorial left its record: %v", err)
		}
		regs, err := target.Registries()
		if err != nil {
			t.Fatal(err)
		}
		for _, reg := range regs {
			if _, err := reg.GetDevice(ctx, ownID); !hub.IsNotFound(err) {
				t.Fatalf("the tutorial left its hub device on %s: %v", reg.Host(), err)
			}
		}
		if n := tutorialGroups(t, target); n != 0 {
			t.Fatalf("the tutorial left %d groups", n)
		}
	})

	t.Run("readonly refuses simulate, telemetry and the tutorial", func(t *testing.T) {
		state := filepath.Join(dir, "state-readonly")
		m := startConsole(t, bin, state, "readonly", "--readonly")
		m.waitFor("browse", "READ-ONLY", "mylegacydevices", "2/2")
		for _, cmd := range []string{"simulate", "tutorial"} {
			m.send(":")
			m.typeText(cmd)
			m.send("Enter")
			m.waitFor(cmd, ":"+cmd+" is off in read-only mode")
		}
		m.openLegacyGroup()
		if s := m.capture(); strings.Contains(s, "s simulate") {
			t.Fatalf("the read-only footer offers simulate:\n%s", s)
		}
		m.send("s", "C-t")
		time.Sleep(500 * time.Millisecond)
		if s := m.capture(); strings.Contains(s, "Simulate device") {
			t.Fatalf("s opened simulate in read-only mode:\n%s", s)
		}
		m.send("?")
		m.waitFor("help", "Disabled (read-only mode)", "s simulate device", "ctrl+t send telemetry", ":groups :group NAME :enrollments :enrollment ID :find ID :derive :cleanup :quota :export :log")
		m.send("Escape")
		m.quit()

		target, _ := startEmulatorAt(t, filepath.Join(state, "emulator"), 0)
		if n, _, err := countRecords(ctx, target.Service, emulator.TutorialGroupID, 0); err != nil || n != 0 {
			t.Fatalf("a read-only console registered %d devices (%v)", n, err)
		}
		if n := tutorialGroups(t, target); n != 0 {
			t.Fatalf("a read-only console created %d tutorial groups", n)
		}
	})
}

// tutorialGroups counts the groups named like the tutorial's.
func tutorialGroups(t *testing.T, target *Target) int {
	t.Helper()
	pager := target.Service.NewEnrollmentGroupPager(nil)
	n := 0
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range page.Items {
			if strings.HasPrefix(g.EnrollmentGroupID, "dpsconsole-tutorial-") {
				n++
			}
		}
	}
	return n
}
