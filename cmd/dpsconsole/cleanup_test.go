package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/internal/filelock"
)

// With no flags at all, cleanup finds the demo seed's deleted group's
// records through the emulator's hubs, shows the plan, and deletes them.
func TestCleanupDemoSeedWithNoFlags(t *testing.T) {
	c := newCLI(t)
	out := c.ok("cleanup", "--dry-run", "--output", "json")
	var report struct {
		Plan    cleanup.Plan     `json:"plan"`
		Actions []cleanup.Action `json:"actions"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("dry-run JSON: %v\n%s", err, out)
	}
	if len(report.Plan.Findings) != 12 || len(report.Actions) != 12 {
		t.Fatalf("dry run found %d, would delete %d; want the 12 records of %s", len(report.Plan.Findings), len(report.Actions), emulator.DemoDeletedGroup)
	}
	for _, f := range report.Plan.Findings {
		if !strings.HasPrefix(f.RegistrationID, "retired-sensor-") || f.Reason != cleanup.ReasonNoEnrollment {
			t.Errorf("finding %+v", f)
		}
	}

	code, out, errOut := c.run("cleanup") // stdin is empty: the question is answered no
	if code != 0 || !strings.Contains(errOut, "[y/N]") || !strings.Contains(errOut, "nothing deleted") {
		t.Fatalf("unconfirmed cleanup: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	out = c.ok("cleanup", "--yes")
	for _, want := range []string{"no-enrollment", "(unknown)", "12", "record:      deleted 12, already gone 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("cleanup output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hub-device:") {
		t.Errorf("hub devices deleted without --hub-devices:\n%s", out)
	}
	if out := c.ok("cleanup", "--dry-run"); !strings.Contains(out, "no orphaned or stale registration records") {
		t.Errorf("second scan:\n%s", out)
	}
}

// --output json gives scripts the plan (every finding with its id, reason
// and group) and the summary.
func TestCleanupJSONReport(t *testing.T) {
	c := newCLI(t)
	out := c.ok("cleanup", "--yes", "--hub-devices", "--output", "json")
	var report struct {
		Plan struct {
			Findings []map[string]any `json:"findings"`
		} `json:"plan"`
		Summary cleanup.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if len(report.Plan.Findings) != 12 {
		t.Fatalf("%d findings, want 12:\n%s", len(report.Plan.Findings), out)
	}
	for _, f := range report.Plan.Findings {
		if f["registrationId"] == "" || f["reason"] != string(cleanup.ReasonNoEnrollment) {
			t.Errorf("finding %v", f)
		}
	}
	o := report.Summary.Outcomes
	if o[cleanup.DeleteRecord][cleanup.OutcomeDeleted] != 12 || o[cleanup.DeleteHubDevice][cleanup.OutcomeDeleted] != 12 ||
		len(report.Summary.Failures) != 0 || report.Summary.JobID == "" {
		t.Errorf("summary %+v, want 12 records and 12 hub devices deleted", report.Summary)
	}
}

func TestCleanupUsageErrors(t *testing.T) {
	c := newCLI(t)
	bad := filepath.Join(t.TempDir(), "ids")
	os.WriteFile(bad, []byte("# old groups\nold-1\nbad id!\n\nold-2\n"), 0o600)
	c.fails(2, []string{"cleanup", "--resume", "x", "--dry-run"}, "--resume")
	c.fails(2, []string{"cleanup", "--concurrency", "0"}, "--concurrency")
	c.fails(2, []string{"cleanup", "--output", "yaml"}, "--output")
	c.fails(2, []string{"cleanup", "--group-id", "bad id!"}, "--group-id")
	c.fails(1, []string{"cleanup", "--resume", "no-such-job"}, `no job "no-such-job"`, "the id printed when the job started")
	c.fails(2, []string{"groups", "delete", "g", "--with-hub-devices"}, "--with-registrations")
	c.fails(1, []string{"groups", "delete", "no-such-group", "--with-registrations"}, `"no-such-group" does not exist`, "cleanup --group-id no-such-group")
	// A bad line in the ids file is reported; the good ones are used.
	code, out, errOut := c.run("cleanup", "--dry-run", "--group-ids-file", bad)
	if code != 0 || !strings.Contains(errOut, bad+":3: skipped") || strings.Contains(errOut, ":2:") {
		t.Errorf("ids file: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

// The real binary is killed (SIGKILL) part-way through a cleanup, twice;
// each time the job is resumed. In the end every orphan was deleted exactly
// once (counted by the emulator), and nothing else was touched.
func TestCleanupKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "dpsconsole")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// The emulator runs here, so it outlives the killed process and counts
	// every delete it serves.
	emu, err := emulator.Start(context.Background(), emulator.Options{DataDir: t.TempDir(), Seed: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	const orphans = 4000
	if err := emu.SeedRegistrations(context.Background(), "gone", orphans); err != nil {
		t.Fatal(err)
	}
	env := emu.Env()
	state := t.TempDir()
	cmd := func(args ...string) *exec.Cmd {
		c := exec.Command(bin, append([]string{"--state-dir", state, "--connection-string", env.DPSConnectionString, "--ca-file", env.CAFile}, args...)...)
		c.Env = append(os.Environ(), "IOTHUB_CONNECTION_STRING="+env.HubConnectionStrings[0], "IOTHUB_CONNECTION_STRING_1="+env.HubConnectionStrings[1])
		return c
	}
	live := func() map[string]bool { return listRecords(t, emu, emulator.DemoHashedGroup) }
	liveBefore := live()

	// First run: started with a plan, killed once a few hundred outcomes are logged.
	first := cmd("cleanup", "--yes", "--hub-devices", "--group-id", "gone", "--concurrency", "4")
	const actions = orphans + 12 + 12 // records of "gone" and of the demo's retired sensors, and the sensors' hub devices
	jobID := startAndKill(t, first, state, "", orphans/10, actions)
	// A resumed run, killed again further on.
	startAndKill(t, cmd("cleanup", "--resume", jobID), state, jobID, orphans/2, actions)
	// The last resume runs to the end.
	if out, err := cmd("cleanup", "--resume", jobID).CombinedOutput(); err != nil {
		t.Fatalf("final resume: %v\n%s", err, out)
	} else {
		t.Logf("final resume:\n%s", out)
	}

	st := emu.Stats()
	want := map[string]bool{}
	for i := range orphans {
		want[fmt.Sprintf("gone-%07d", i)] = true
	}
	for i := 1; i <= 12; i++ {
		want[fmt.Sprintf("retired-sensor-%03d", i)] = true
	}
	for id := range want {
		if n := st.RegistrationDeletes[id]; n != 1 {
			t.Errorf("orphan %s deleted %d times, want exactly 1", id, n)
		}
	}
	for id, n := range st.RegistrationDeletes {
		if !want[id] {
			t.Errorf("record %s, not an orphan, was deleted %d times", id, n)
		}
	}
	if after := live(); len(after) != len(liveBefore) {
		t.Errorf("live group had %d records, has %d", len(liveBefore), len(after))
	}
	// Hub devices: each orphan's identity deleted exactly once, no other.
	hubDeletes := 0
	for key, n := range st.HubDeviceDeletes {
		hubDeletes += n
		if id := key[strings.LastIndex(key, "/")+1:]; !strings.HasPrefix(id, "retired-sensor-") || n != 1 {
			t.Errorf("hub device %s deleted %d times; only the 12 retired sensors, once each", key, n)
		}
	}
	if hubDeletes != 12 {
		t.Errorf("%d hub device deletes, want 12", hubDeletes)
	}
	for i := 1; i <= 12; i++ {
		id := fmt.Sprintf("retired-sensor-%03d", i)
		for _, h := range hubHosts(env) {
			if _, err := emu.HubDevice(context.Background(), h, id); err == nil {
				t.Errorf("hub %s still has orphan device %s", h, id)
			}
		}
	}
	for id := range liveBefore {
		found := false
		for _, h := range hubHosts(env) {
			_, err := emu.HubDevice(context.Background(), h, id)
			found = found || err == nil
		}
		if !found {
			t.Errorf("live device %s lost its hub identity", id)
		}
	}
}

var jobLine = regexp.MustCompile(`job (\S+) started`)

// startAndKill starts c, learns its job id (from its output, or the one
// given), and kills it with SIGKILL once its log holds at least n outcomes,
// checking it had not settled all of the job's actions by then.
func startAndKill(t *testing.T, c *exec.Cmd, state, jobID string, n, actions int) string {
	t.Helper()
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ids := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := jobLine.FindStringSubmatch(sc.Text()); m != nil {
				ids <- m[1]
			}
		}
	}()
	if jobID == "" {
		select {
		case jobID = <-ids:
		case <-time.After(60 * time.Second):
			c.Process.Kill()
			t.Fatal("the run printed no job id")
		}
	}
	log := filepath.Join(state, "cleanup-jobs", jobID, "outcomes.jsonl")
	deadline := time.Now().Add(60 * time.Second)
	for lines(log) < n {
		if time.Now().After(deadline) {
			c.Process.Kill()
			t.Fatalf("the job log never reached %d lines", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := c.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: %v (did the run finish before %d outcomes? lower the threshold)", err, n)
	}
	c.Wait()
	if got := lines(log); got >= actions {
		t.Fatalf("the run had finished (%d outcomes) before it was killed", got)
	}
	return jobID
}

func lines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

func listRecords(t *testing.T, emu *emulator.Emulator, group string) map[string]bool {
	t.Helper()
	tr, err := dps.NewTransport(emu.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	client, err := dps.NewClientFromConnectionString(emu.Env().DPSConnectionString, clientOptions(tr))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	pager := client.NewRegistrationStatePager(group, &dps.PagerOptions{PageSize: 1000})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page.Items {
			out[st.RegistrationID] = true
		}
	}
	return out
}

func hubHosts(env emulator.Env) []string {
	var out []string
	for _, cs := range env.HubConnectionStrings {
		for _, part := range strings.Split(cs, ";") {
			if h, ok := strings.CutPrefix(part, "HostName="); ok {
				out = append(out, h)
			}
		}
	}
	return out
}

// A job another process is running is not resumed alongside it: the command
// says so, prints no summary and deletes nothing.
func TestCleanupResumeWhileAnotherProcessRuns(t *testing.T) {
	c := newCLI(t)
	code, _, errOut := c.run("cleanup", "--yes")
	id := regexp.MustCompile(`job (\S+) started`).FindStringSubmatch(errOut)
	if code != 0 || id == nil {
		t.Fatalf("cleanup: exit %d\n%s", code, errOut)
	}
	// flock locks belong to an open file: this open stands in for the other process.
	f, err := os.OpenFile(filepath.Join(c.stateDir, "cleanup-jobs", id[1], "outcomes.jsonl"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := filelock.TryLock(f); err != nil {
		t.Fatal(err)
	}
	c.fails(1, []string{"cleanup", "--resume", id[1]}, "job "+id[1]+" is running in another process", "wait for it to finish")
	if _, out, _ := c.run("cleanup", "--resume", id[1]); out != "" {
		t.Errorf("a refused resume printed a summary:\n%s", out)
	}
}

// A hub device with no registration record (here: its record was deleted)
// is reported as its own finding, with its hub, and deleted only with
// --delete-unregistered-devices; the fleet's provisioned devices never are.
func TestCleanupReportsUnregisteredHubDevices(t *testing.T) {
	c := newCLI(t)
	c.ok("registrations", "delete", "fleet-sensor-001")
	out := c.ok("cleanup", "--dry-run")
	for _, want := range []string{"unregistered-device", "fleet-sensor-001", "1 hub device without a registration record", "--delete-unregistered-devices"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fleet-sensor-002") {
		t.Errorf("a provisioned device is reported:\n%s", out)
	}
	out = c.ok("cleanup", "--dry-run", "--output", "json")
	var report struct {
		Plan cleanup.Plan `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	if u := report.Plan.Unregistered; len(u) != 1 || u[0].DeviceID != "fleet-sensor-001" || u[0].Hub == "" {
		t.Fatalf("unregistered devices in JSON = %+v", u)
	}
	c.ok("cleanup", "--yes", "--hub-devices") // the orphans, with their devices: not this one
	if out := c.ok("cleanup", "--dry-run"); !strings.Contains(out, "fleet-sensor-001") {
		t.Fatalf("the unregistered device went without --delete-unregistered-devices:\n%s", out)
	}
	code, _, errOut := c.runIn("", "cleanup", "--delete-unregistered-devices")
	if code != 0 || !strings.Contains(errOut, "1 unregistered hub device on "+u0hub(report.Plan)) || !strings.Contains(errOut, "nothing deleted") {
		t.Fatalf("unconfirmed: exit %d, stderr %s", code, errOut)
	}
	out = c.ok("cleanup", "--delete-unregistered-devices", "--yes")
	if !strings.Contains(out, "hub-device:  deleted 1") {
		t.Errorf("run output:\n%s", out)
	}
	if out := c.ok("cleanup", "--dry-run"); strings.Contains(out, "fleet-sensor-001") || !strings.Contains(out, "no hub devices without a registration record") {
		t.Errorf("after the deletion:\n%s", out)
	}
	c.fails(2, []string{"cleanup", "--resume", "20261122-203256-a1b2c3", "--delete-unregistered-devices"}, "unregistered-devices: a resumed job")
}

func u0hub(p cleanup.Plan) string { return p.Unregistered[0].Hub }
