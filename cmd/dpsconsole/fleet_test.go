package main

import (
	"context"
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/fleet"
)

func TestFleetOnEmbeddedEmulator(t *testing.T) {
	c := newCLI(t)
	code, out, errOut := c.run("fleet", "--group", "mylegacydevices", "--devices", "20", "--prefix", "fl", "--start", "5", "--telemetry", "2", "--interval", "10ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"registering fl-5 … fl-24 (20 devices, group mylegacydevices)", "over https, unpaced", "20/20 (100%)", "assigned 20"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, want := range []string{"(complete)", "20 of 20 finished (20 in this run), 0 pending", "Telemetry:", "40 messages sent", "initialAssignment", "HUB", "p50 "} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	run := regexp.MustCompile(`run (\d{8}-\d{6}-[0-9a-f]{6})`).FindStringSubmatch(errOut)
	if run == nil {
		t.Fatalf("no run id on stderr:\n%s", errOut)
	}
	if fi, err := os.Stat(filepath.Join(c.stateDir, "fleet-runs", run[1], "outcomes.jsonl")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("run log: %v %v", fi, err)
	}

	// Resuming the finished run registers nothing; JSON has the split.
	var sum struct {
		Assigned    int `json:"assigned"`
		FinishedNow int `json:"finishedNow"`
		ByHub       []struct {
			Hub   string `json:"hub"`
			Count int    `json:"count"`
		} `json:"byHub"`
		Latency struct {
			P50 int64 `json:"p50Ms"`
		} `json:"latency"`
	}
	if err := json.Unmarshal([]byte(c.ok("fleet", "--resume", run[1], "-o", "json")), &sum); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, h := range sum.ByHub {
		total += h.Count
	}
	if sum.Assigned != 20 || sum.FinishedNow != 0 || total != 20 || len(sum.ByHub) < 1 || sum.Latency.P50 <= 0 {
		t.Errorf("resumed summary %+v", sum)
	}
}

// TestFleetOverMQTTOnEmbeddedEmulator: --transport mqtt and mqtt-ws are
// taken, every device is assigned and sends its telemetry over the same
// transport to its hub's MQTT endpoint, and the run resumes as itself.
func TestFleetOverMQTTOnEmbeddedEmulator(t *testing.T) {
	c := newCLI(t)
	for _, tr := range []string{"mqtt", "mqtt-ws"} {
		code, out, errOut := c.run("fleet", "--group", "mylegacydevices", "--devices", "8", "--prefix", tr, "--transport", tr, "--telemetry", "2", "--interval", "10ms")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", tr, code, out, errOut)
		}
		for _, want := range []string{"over " + tr + ", unpaced", "8/8 (100%)", "assigned 8"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", tr, want, errOut)
			}
		}
		for _, want := range []string{"(complete)", "8 of 8 finished (8 in this run)", "16 messages sent", "initialAssignment"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: stdout lacks %q:\n%s", tr, want, out)
			}
		}
		run := regexp.MustCompile(`run (\d{8}-\d{6}-[0-9a-f]{6})`).FindStringSubmatch(errOut)
		if run == nil {
			t.Fatalf("no run id on stderr:\n%s", errOut)
		}
		code, out, errOut = c.run("fleet", "--resume", run[1])
		if code != 0 || !strings.Contains(errOut, "over "+tr) || !strings.Contains(out, "8 of 8 finished (0 in this run)") {
			t.Errorf("%s resumed: exit %d\n%s\n%s", tr, code, out, errOut)
		}
	}
}

func TestFleetWrongKeyGroupsTheFailures(t *testing.T) {
	c := newCLI(t)
	keyFile := filepath.Join(t.TempDir(), "key")
	wrong := tutorialGroupKey[:40] + "AAAA" + tutorialGroupKey[44:]
	if err := os.WriteFile(keyFile, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.fails(1, []string{"fleet", "--group", "mylegacydevices", "--group-key-file", keyFile, "--devices", "5", "--prefix", "bad"},
		"5 of 5 devices did not register", "HTTP 401", "401002", "derive the device key", "e.g. bad-1, bad-2, bad-3")
	if strings.Contains(out, wrong) || strings.Contains(out, tutorialGroupKey) {
		t.Error("a key appears in the output")
	}
	// The run remembers its keys came from a file: a resume must give it
	// again (else the keys would silently come from the group).
	run := regexp.MustCompile(`--resume (\d{8}-\d{6}-[0-9a-f]{6})`).FindStringSubmatch(out)
	if run == nil {
		t.Fatalf("no run id:\n%s", out)
	}
	c.fails(2, []string{"fleet", "--resume", run[1]}, "derived its device keys from a key file", "--group-key-file")
	right := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(right, []byte(tutorialGroupKey), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := c.run("fleet", "--resume", run[1], "--group-key-file", right)
	if code != 0 || !strings.Contains(out, "5 of 5 finished (5 in this run)") || !strings.Contains(errOut, "is readable by other users (mode 0644)") {
		t.Errorf("resumed with the right key (world-readable): exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestFleetErrors(t *testing.T) {
	c := newCLI(t)
	keyDir := t.TempDir()
	garbage := filepath.Join(keyDir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := []string{"fleet", "--group", "mylegacydevices"}
	c.fails(2, []string{"fleet", "--devices", "3"}, "--group is required")
	c.fails(2, g, "--devices is required")
	c.fails(2, append(g, "--devices", "3", "--prefix", "bad prefix"), `prefix "bad prefix"`, "not valid")
	c.fails(2, append(g, "--devices", "3", "--prefix", strings.Repeat("p", 127)), "not valid")
	c.fails(2, append(g, "--devices", "3", "--transport", "amqp"), `--transport "amqp"`, "https, mqtt or mqtt-ws")
	c.fails(2, append(g, "--devices", "3", "--rate", "fast"), "--rate", "50/s")
	c.fails(2, append(g, "--devices", "3", "--ramp", "0..500/s"), "--ramp", "0..500/s:60s")
	c.fails(2, append(g, "--devices", "3", "--rate", "5/s", "--ramp", "0..5/s:1s"), "not both")
	c.fails(2, append(g, "--devices", "3", "--concurrency", "0"), "--concurrency")
	c.fails(2, append(g, "--devices", "3", "--interval", "1s"), "--interval", "with --telemetry")
	c.fails(2, []string{"fleet", "--resume", "20990101-000000-abcdef"}, `no run "20990101-000000-abcdef"`)
	c.fails(2, []string{"fleet", "--resume", "x", "--devices", "3"}, "--devices cannot be changed on --resume")
	c.fails(1, []string{"fleet", "--group", "nope", "--devices", "3"}, `group "nope" does not exist`)
	c.fails(2, append(g, "--devices", "3", "--group-key-file", garbage), "does not hold a group key")
	c.fails(2, append(g, "--devices", "3", "--group-key-file", filepath.Join(keyDir, "missing")), "--group-key-file", "no such file")
	c.fails(2, append(g, "--devices", "3", "--group-key-file", keyDir), "--group-key-file", "is a directory")
	c.fails(2, append(g, "--devices", "3", "--group-key-file", "-"), "--group-key-file takes a file, not standard input")
	c.fails(2, append(g, "--devices", "3", "--group-key-file", garbage, "--secondary"), "--secondary", "does not go with --group-key-file")
}

// TestFleetInterruptAndResume: ctrl+c (the context fang cancels) stops the
// run with a count of what finished and the --resume line; the resumed run
// does the rest and no device twice.
func TestFleetInterruptAndResume(t *testing.T) {
	c := newCLI(t)
	args := []string{"--state-dir", c.stateDir, "fleet", "--group", "mylegacydevices", "--devices", "40", "--prefix", "int", "--rate", "20/s"}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	var out, errOut syncBuffer
	code := run(ctx, args, stdio{strings.NewReader(""), &out, &errOut})
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	m := regexp.MustCompile(`(?i)interrupted: (\d+) of 40 devices finished; resume the run with --resume (\S+)`).FindStringSubmatch(strings.Join(strings.Fields(errOut.String()), " "))
	if m == nil || !strings.Contains(out.String(), "(stopped)") || !strings.Contains(errOut.String(), "stopping: no new devices") {
		t.Fatalf("stopped run:\n%s\n%s", out.String(), errOut.String())
	}
	first, _ := strconv.Atoi(m[1])
	if first == 0 || first == 40 {
		t.Fatalf("%d of 40 finished before the stop; the test proves nothing", first)
	}
	var sum struct {
		Assigned    int `json:"assigned"`
		FinishedNow int `json:"finishedNow"`
		ByStatus    []struct {
			Substatus string `json:"substatus"`
			Count     int    `json:"count"`
		} `json:"byStatus"`
	}
	if err := json.Unmarshal([]byte(c.ok("fleet", "--resume", strings.TrimSuffix(m[2], "."), "-o", "json")), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Assigned != 40 || sum.FinishedNow != 40-first {
		t.Fatalf("resumed: %+v after %d", sum, first)
	}
	// The emulator has a record for each device (that none registered
	// twice is TestFleetResumeRegistersEachDeviceOnce's, in dps/fleet).
	recs := c.ok("registrations", "list", "--group", "mylegacydevices", "-o", "json")
	var states []struct {
		RegistrationID string `json:"registrationId"`
		Status         string `json:"status"`
	}
	if err := json.Unmarshal([]byte(recs), &states); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range states {
		if strings.HasPrefix(s.RegistrationID, "int-") && s.Status == "assigned" {
			n++
		}
	}
	if n != 40 {
		t.Errorf("%d assigned int-* records, want 40", n)
	}
}

// TestFleetDelete: --delete asks first, then deletes the run's records and
// their hub devices through a clean-up job.
func TestFleetDelete(t *testing.T) {
	c := newCLI(t)
	_, _, errOut := c.run("fleet", "--group", "mylegacydevices", "--devices", "6", "--prefix", "gone")
	run := regexp.MustCompile(`run (\d{8}-\d{6}-[0-9a-f]{6})`).FindStringSubmatch(errOut)
	if run == nil {
		t.Fatalf("no run id:\n%s", errOut)
	}
	records := func() int {
		var states []struct {
			RegistrationID string `json:"registrationId"`
		}
		if err := json.Unmarshal([]byte(c.ok("registrations", "list", "--group", "mylegacydevices", "-o", "json")), &states); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range states {
			if strings.HasPrefix(s.RegistrationID, "gone-") {
				n++
			}
		}
		return n
	}
	if n := records(); n != 6 {
		t.Fatalf("%d records before", n)
	}
	code, _, errOut := c.runIn("n\n", "fleet", "--delete", run[1])
	if code != 0 || !strings.Contains(errOut, "Delete 6 registration records and 6 hub device identities of fleet run "+run[1]+" (gone-1 … gone-6)") || !strings.Contains(errOut, "nothing deleted") {
		t.Fatalf("declined: exit %d\n%s", code, errOut)
	}
	if n := records(); n != 6 {
		t.Fatalf("declining deleted %d records", 6-n)
	}
	out := c.ok("fleet", "--delete", run[1], "--yes")
	for _, want := range []string{"record:", "deleted 6", "hub-device:"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if n := records(); n != 0 {
		t.Errorf("%d records left", n)
	}
	c.fails(2, []string{"fleet", "--delete", run[1], "--devices", "3"}, "--delete takes only --yes and --output, not --devices")
	c.fails(2, []string{"fleet", "--group", "g", "--devices", "3", "--yes"}, "--yes only goes with --delete or --reregister")
}

// TestFleetDefaultPace: a real DPS gets its documented quota by default, an
// emulator on this machine none; --rate and --ramp win over both.
func TestFleetDefaultPace(t *testing.T) {
	c := &fleetCmd{}
	for host, want := range map[string]fleet.Schedule{
		"global.azure-devices-provisioning.net": fleet.Quota,
		"my-dps.example.net:443":                fleet.Quota,
		"127.0.0.1:40123":                       {},
		"localhost:8443":                        {},
	} {
		if got, err := c.schedule(host); err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", host, got, err, want)
		}
	}
	if (fleet.Quota.At(1000) - time.Minute).Abs() > time.Millisecond {
		t.Errorf("the quota starts 1,000 devices in %v, not a minute", fleet.Quota.At(1000))
	}
	c.Rate = "2000/min"
	if got, _ := c.schedule("global.azure-devices-provisioning.net"); math.Abs(got.To*60-2000) > 1e-9 {
		t.Errorf("--rate: %+v", got)
	}
}

// TestFleetResumeReregister: --resume RUN --reregister registers the run's
// devices a second time, after asking (declined: nothing registered);
// without it a finished run registers none.
func TestFleetResumeReregister(t *testing.T) {
	c := newCLI(t)
	_, _, errOut := c.run("fleet", "--group", "mylegacydevices", "--devices", "4", "--prefix", "again")
	run := regexp.MustCompile(`run (\d{8}-\d{6}-[0-9a-f]{6})`).FindStringSubmatch(errOut)
	if run == nil {
		t.Fatalf("no run id:\n%s", errOut)
	}
	// updated is when each device's record was last written.
	updated := func() map[string]string {
		var states []struct {
			RegistrationID string `json:"registrationId"`
			Updated        string `json:"lastUpdatedDateTimeUtc"`
		}
		if err := json.Unmarshal([]byte(c.ok("registrations", "list", "--group", "mylegacydevices", "-o", "json")), &states); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range states {
			if strings.HasPrefix(s.RegistrationID, "again-") {
				m[s.RegistrationID] = s.Updated
			}
		}
		return m
	}
	first := updated()
	if len(first) != 4 {
		t.Fatalf("records %v", first)
	}
	var sum struct {
		FinishedNow int `json:"finishedNow"`
	}
	if err := json.Unmarshal([]byte(c.ok("fleet", "--resume", run[1], "-o", "json")), &sum); err != nil || sum.FinishedNow != 0 {
		t.Fatalf("plain resume of a finished run: %+v, %v", sum, err)
	}
	code, _, errOut := c.runIn("n\n", "fleet", "--resume", run[1], "--reregister")
	if code != 0 || !strings.Contains(errOut, "Register all 4 devices of fleet run "+run[1]+" (again-1 … again-4) again") || !strings.Contains(errOut, "nothing registered") {
		t.Fatalf("declined: exit %d\n%s", code, errOut)
	}
	if got := updated(); !maps.Equal(got, first) {
		t.Fatalf("declining registered again: %v, before %v", got, first)
	}
	if err := json.Unmarshal([]byte(c.ok("fleet", "--resume", run[1], "--reregister", "--yes", "-o", "json")), &sum); err != nil || sum.FinishedNow != 4 {
		t.Fatalf("reregistered: %+v, %v", sum, err)
	}
	for id, at := range updated() {
		if at == first[id] || at == "" {
			t.Errorf("%s not registered again (record written %s)", id, at)
		}
	}
	c.fails(2, []string{"fleet", "--group", "g", "--devices", "3", "--reregister"}, "--reregister goes with --resume")
	c.fails(2, []string{"fleet", "--resume", run[1], "--yes"}, "--yes only goes with --delete or --reregister")
}
