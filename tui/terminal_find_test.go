package tui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTerminalDescribeAndFindUnderTmux runs the real binary on its embedded
// emulator in tmux: describe a group (keys masked, then revealed), :find a
// record, its hub device and its group, and a :find that finds nothing.
func TestTerminalDescribeAndFindUnderTmux(t *testing.T) {
	ensureTmux(t)
	dir := t.TempDir()
	bin := buildConsole(t, dir)
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("dpsconsole-find-%d", os.Getpid())}
	cmdline := fmt.Sprintf("env -u DPS_CONNECTION_STRING TERM=xterm-256color %s --state-dir %s; sleep 60", bin, filepath.Join(dir, "state"))
	m.tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", cmdline)
	t.Cleanup(func() { exec.Command("tmux", "-L", m.socket, "kill-server").Run() })

	m.waitFor("browse", "hashed-fleet", "2/2")
	m.send("i")
	m.waitFor("describe the group", "Describe enrollment group hashed-fleet", `"enrollmentGroupId": "hashed-fleet"`, "lines 1–36 of")
	m.send("G") // the keys, read by the second request, are at the end
	m.waitFor("scroll", "POST /enrollmentGroups/hashed-fleet/attestationmechanism", `"primaryKey": "••••••••"`)
	m.send("v")
	m.waitUntil("reveal", func(s string) bool {
		return strings.Contains(s, `"primaryKey": "`) && !strings.Contains(s, `"primaryKey": "••••••••"`)
	})
	m.send("Escape", ":")
	m.typeText("find fleet-sensor-003")
	m.send("Enter")
	m.waitFor("find", "Describe registration record fleet-sensor-003", `"registrationId": "fleet-sensor-003"`,
		"Status     assigned — DPS returned a device ID and an IoT hub to the device", "GET /registrations/fleet-sensor-003")
	m.send(":")
	m.typeText("find no-such-device")
	m.send("Enter")
	m.waitFor("not found", "no registration record has the ID no-such-device", `"registrationId": "fleet-sensor-003"`)
	m.send("Enter")
	m.waitFor("its hub device", "Hub device fleet-sensor-003")
	m.send("Escape", "o")
	m.waitFor("its group", "Describe registration record fleet-sensor-003 › Group hashed-fleet", "Primary key ••••••••")
}

// waitUntil waits for a screen that ok accepts.
func (m *tmuxTerm) waitUntil(step string, ok func(string) bool) string {
	m.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		s := m.capture()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s: the terminal never showed it:\n%s", step, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
