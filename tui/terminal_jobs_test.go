package tui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/cleanup"
)

// Quitting the real console while a clean-up job runs prints, on the
// terminal after the console has closed, the job's ID and the command that
// resumes it, and that command finishes the job.
func TestTerminalQuitMidJobPrintsTheResumeCommand(t *testing.T) {
	ensureTmux(t)
	dir := t.TempDir()
	bin := buildConsole(t, dir)
	// The embedded emulator's data dir, seeded beforehand with the records
	// of a deleted group the journal knows: enough for a job of some seconds.
	state := filepath.Join(dir, "state")
	const orphans = 30000
	emuDir := filepath.Join(state, "emulator")
	target, emu := startEmulatorAt(t, emuDir, 0)
	if err := emu.SeedRegistrations(context.Background(), "gone", orphans); err != nil {
		t.Fatal(err)
	}
	j, err := cleanup.OpenJournal(state, target.Service.Host())
	if err == nil {
		err = j.Seen("gone")
	}
	if err != nil {
		t.Fatal(err)
	}
	target.HTTPClient.CloseIdleConnections()
	emu.Close()

	m := &tmuxTerm{t: t, socket: fmt.Sprintf("dpsconsole-jobs-%d", os.Getpid())}
	cmdline := fmt.Sprintf("env -u DPS_CONNECTION_STRING TERM=xterm-256color %s --state-dir %s; sleep 60", bin, state)
	m.tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", cmdline)
	t.Cleanup(func() { exec.Command("tmux", "-L", m.socket, "kill-server").Run() })
	m.waitFor("browse", "hashed-fleet")
	m.send(":")
	m.typeText("cleanup")
	m.send("Enter")
	m.waitFor("scan", "Orphaned registration records", "group-deleted", "gone")
	m.send("p")
	m.waitFor("preview", "Dry run:")
	m.send("d")
	m.waitFor("confirm", "Delete ")
	m.send("y")
	m.waitFor("running", "deletes/s", "ctrl+x stops")
	m.send("q")
	m.waitFor("quit guard", "q again quits")
	m.send("q")
	out := m.waitFor("after the console", "dpsconsole cleanup --resume ")
	// The hint comes last, once the target is closed: the shell's sleep runs.
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(m.tmux("list-panes", "-t", "console", "-F", "#{pane_current_command}"), "sleep"); {
		if time.Now().After(deadline) {
			t.Fatal("the console did not exit")
		}
		time.Sleep(100 * time.Millisecond)
	}
	out = m.capture()
	id := regexp.MustCompile(`clean-up job (\S+) was stopped before it finished`).FindStringSubmatch(out)
	if id == nil || !strings.Contains(out, "dpsconsole cleanup --resume "+id[1]) {
		t.Fatalf("the job's ID and resume command should be on the terminal:\n%s", out)
	}

	resume := exec.Command(bin, "cleanup", "--resume", id[1], "--state-dir", state)
	resume.Env = append(os.Environ(), "DPS_CONNECTION_STRING=")
	done, err := resume.CombinedOutput()
	if err != nil || !strings.Contains(string(done), "resuming job "+id[1]) {
		t.Fatalf("the printed command should resume the job: %v\n%s", err, done)
	}
	target, _ = startEmulatorAt(t, emuDir, 0)
	if n, _, err := countRecords(context.Background(), target.Service, "gone", 0); err != nil || n != 0 {
		t.Fatalf("%d orphans left after the resume (%v)", n, err)
	}
}
