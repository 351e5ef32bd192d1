package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// cli runs dpsconsole commands against the embedded emulator of one state dir.
type cli struct {
	t        *testing.T
	stateDir string
}

func newCLI(t *testing.T) *cli {
	t.Setenv("DPS_CONNECTION_STRING", "")
	t.Setenv("DPS_CA_FILE", "")
	return &cli{t: t, stateDir: t.TempDir()}
}

// run returns the exit code, stdout and stderr of one command.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	return c.runIn("", args...)
}

// runIn is run with stdin. A command that has not ended after a minute is
// stopped (as by Ctrl-C): one that should have been refused may be serving,
// e.g. an emulator started with a bad flag.
func (c *cli) runIn(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb syncBuffer
	code := run(ctx, append([]string{"--state-dir", c.stateDir}, args...), stdio{strings.NewReader(stdin), &out, &errb})
	return code, out.String(), errb.String()
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// fails runs a command that must exit with code and mention every want.
func (c *cli) fails(code int, args []string, want ...string) string {
	c.t.Helper()
	got, out, errOut := c.run(args...)
	if got != code {
		c.t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, got, code, out, errOut)
	}
	// fang capitalises and wraps error messages.
	flat := strings.ToLower(strings.Join(strings.Fields(out+" "+errOut), " "))
	for _, w := range want {
		if !strings.Contains(flat, strings.ToLower(w)) {
			c.t.Errorf("%v: output lacks %q\nstdout: %s\nstderr: %s", args, w, out, errOut)
		}
	}
	return errOut
}

const (
	testPrimary   = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testSecondary = "HxwdHh8QERITFBUWFxgZGhscHR4fEBESExQVFhcYGRo="
)

func TestGroupsCommands(t *testing.T) {
	c := newCLI(t)

	out := c.ok("groups", "list")
	if !strings.HasPrefix(out, "GROUP ID") || !strings.Contains(out, "mylegacydevices") || !strings.Contains(out, "hashed-fleet") {
		t.Fatalf("groups list:\n%s", out)
	}

	out = c.ok("groups", "create", "line-7", "--primary-key", testPrimary, "--secondary-key", testSecondary,
		"--allocation-policy", "HASHED", "--initial-twin-tags", `{"site":"oslo"}`, "--reprovision-policy", "reset", "-o", "json")
	var g dps.EnrollmentGroup
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("create -o json: %v\n%s", err, out)
	}
	if g.EnrollmentGroupID != "line-7" || g.AllocationPolicy != dps.AllocationHashed || g.InitialTwin == nil || g.InitialTwin.Tags["site"] != "oslo" ||
		g.ReprovisionPolicy == nil || g.ReprovisionPolicy.MigrateDeviceData || g.ETag == "" {
		t.Errorf("created group: %+v", g)
	}
	if strings.Contains(out, testPrimary) {
		t.Error("create printed the keys without --show-keys")
	}

	out = c.ok("groups", "show", "line-7", "--show-keys")
	if !strings.Contains(out, testPrimary) || !strings.Contains(out, testSecondary) || !strings.Contains(out, `{"site":"oslo"}`) {
		t.Errorf("show --show-keys:\n%s", out)
	}
	out = c.ok("groups", "show", "line-7", "-o", "json")
	if strings.Contains(out, testPrimary) {
		t.Errorf("show -o json printed keys:\n%s", out)
	}

	// update changes only what it is told, keeps the keys, and writes with the ETag.
	c.ok("groups", "update", "line-7", "--provisioning-status", "disabled", "--edge")
	out = c.ok("groups", "show", "line-7", "--show-keys", "-o", "json")
	var u dps.EnrollmentGroup
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		t.Fatal(err)
	}
	if u.ProvisioningStatus != dps.ProvisioningDisabled || u.Capabilities == nil || !u.Capabilities.IoTEdge ||
		u.AllocationPolicy != dps.AllocationHashed || u.Attestation.SymmetricKey.PrimaryKey.Reveal() != testPrimary || u.ETag == g.ETag {
		t.Errorf("after update: %+v", u)
	}
	c.fails(1, []string{"groups", "update", "line-7", "--etag", g.ETag, "--provisioning-status", "enabled"}, "412", "ETag")
	c.fails(2, []string{"groups", "update", "line-7"}, "nothing to change")

	c.fails(1, []string{"groups", "create", "line-7"}, "already exists")
	c.fails(1, []string{"groups", "delete", "line-7", "--etag", g.ETag}, "412")
	out = c.ok("groups", "delete", "line-7", "--etag", u.ETag)
	if !strings.Contains(out, "deleted enrollment group line-7") {
		t.Errorf("delete: %s", out)
	}
	c.fails(1, []string{"groups", "show", "line-7"}, `"line-7" does not exist`, "404")

	// Every group seen is in the known-groups journal, and the delete too.
	a := &app{stateDir: c.stateDir}
	tg, err := a.openTarget(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	j, err := cleanup.OpenJournal(c.stateDir, tg.client.Host())
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, g := range j.Groups() {
		known[g.ID] = !g.Deleted.IsZero()
	}
	if deleted, ok := known["line-7"]; !ok || !deleted {
		t.Errorf("journal: line-7 seen %v, deleted %v", ok, deleted)
	}
	if deleted, ok := known["mylegacydevices"]; !ok || deleted {
		t.Errorf("journal: mylegacydevices seen %v, deleted %v", ok, deleted)
	}
}

func TestGroupsInputValidation(t *testing.T) {
	c := newCLI(t)
	c.fails(2, []string{"groups", "create", "bad id"}, "character 4", "space")
	c.fails(2, []string{"groups", "create", "g", "--primary-key", "abc"}, "--primary-key", "multiple of 4")
	c.fails(2, []string{"groups", "create", "g", "--allocation-policy", "random"}, "hashed, geoLatency, static or custom")
	c.fails(2, []string{"groups", "create", "g", "--allocation-policy", "static"}, "exactly one hub")
	c.fails(2, []string{"groups", "create", "g", "--initial-twin-tags", "[1]"}, "JSON object")
	c.fails(2, []string{"groups", "list", "-o", "yaml"}, "table, json or jsonl")
	c.fails(2, []string{"groups", "list", "--page-size", "abc"}, `invalid value "abc" for --page-size: give a whole number`)
	c.fails(2, []string{"registrations", "list", "--group", "g", "--page-size", "0"}, "--page-size 0")
	c.fails(2, []string{"groups", "show"}, "received 0", "usage: dpsconsole groups show ID")
	c.fails(2, []string{"--ca-file", "/no/such/ca.pem", "groups", "list"}, "--ca-file needs --connection-string")
	c.fails(2, []string{"--connection-string", "HostName=x.azure-devices-provisioning.net", "groups", "list"}, "SharedAccessKey is missing", "quote it")
	c.fails(2, []string{"groups", "lst"}, `unknown command "lst"`, "dpsconsole groups --help")
	if code, _, errOut := c.run("registrations", "list", "--group", "no-such-group"); code != 0 || !strings.Contains(errOut, `no enrollment group "no-such-group" exists`) {
		t.Errorf("registrations list of an unknown group: exit %d, stderr %q; want 0 and a note", code, errOut)
	}
}

func TestBadConnectionStringNeverEchoesKey(t *testing.T) {
	c := newCLI(t)
	errOut := c.fails(2, []string{"--connection-string", "HostName=x.azure-devices-provisioning.net;SharedAccessKey=" + testPrimary, "groups", "list"},
		"--connection-string", "SharedAccessKeyName")
	if strings.Contains(errOut, testPrimary) {
		t.Errorf("the error repeats the key:\n%s", errOut)
	}
	t.Setenv("DPS_CONNECTION_STRING", "HostName=x;SharedAccessKeyName=p;SharedAccessKey="+testPrimary[:10])
	errOut = c.fails(2, []string{"groups", "list"}, "$DPS_CONNECTION_STRING")
	if strings.Contains(errOut, testPrimary[:10]) {
		t.Errorf("the error repeats the key:\n%s", errOut)
	}
}

func TestWebhookCodeIsMaskedUntilShowKeys(t *testing.T) {
	c := newCLI(t)
	errOut := c.fails(2, []string{"groups", "create", "g", "--webhook-url", "htps://fn.example/api?code=SECRET"}, "--webhook-url", "http(s) URL")
	if strings.Contains(errOut, "SECRET") {
		t.Errorf("the error repeats the webhook code:\n%s", errOut)
	}
	// Nothing listens there: creating the group never calls the webhook.
	if out := c.ok("groups", "create", "g", "--webhook-url", "https://127.0.0.1:1/api?code=SECRET"); strings.Contains(out, "SECRET") || !strings.Contains(out, "https://127.0.0.1:1/api?••••••••") {
		t.Errorf("create shows the webhook code, or no masked URL:\n%s", out)
	}
	if out := c.ok("groups", "show", "g"); strings.Contains(out, "SECRET") {
		t.Errorf("show without --show-keys shows the webhook code:\n%s", out)
	}
	if out := c.ok("groups", "show", "g", "--show-keys"); !strings.Contains(out, "https://127.0.0.1:1/api?code=SECRET") {
		t.Errorf("show --show-keys hides the webhook URL:\n%s", out)
	}
}

func TestStandaloneTargetWithCAFile(t *testing.T) {
	c := newCLI(t)
	// Start the embedded emulator once to get its env, then use it as a
	// "real" DPS through the connection string and the CA file.
	a := &app{stateDir: c.stateDir}
	tg, err := a.openTarget(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	env := tg.emu.Env()
	t.Setenv("DPS_CONNECTION_STRING", env.DPSConnectionString)
	c.fails(1, []string{"groups", "show", "mylegacydevices"}, "certificate", "--ca-file")
	t.Setenv("DPS_CA_FILE", env.CAFile)
	out := c.ok("groups", "show", "mylegacydevices")
	if !strings.Contains(out, "static") {
		t.Errorf("show through the connection string:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("nothing"), 0o600)
	c.fails(2, []string{"--ca-file", bad, "groups", "list"}, "no PEM certificate")
}

// TestListStreamsPageByPage checks that rows are written as each page
// arrives, not after the last one.
func TestListStreamsPageByPage(t *testing.T) {
	const pages = 4
	fetched := 0
	pager := runtime.NewPager(runtime.PagingHandler[dps.RegistrationStatePage]{
		More: func(p dps.RegistrationStatePage) bool { return p.ContinuationToken != "" },
		Fetcher: func(_ context.Context, _ *dps.RegistrationStatePage) (dps.RegistrationStatePage, error) {
			fetched++
			p := dps.RegistrationStatePage{Items: []dps.DeviceRegistrationState{{RegistrationID: fmt.Sprintf("dev-%d", fetched)}}}
			if fetched < pages {
				p.ContinuationToken = "more"
			}
			return p, nil
		},
	})
	w := &pageRecorder{fetched: &fetched}
	n, err := streamList(context.Background(), w, outputTable, pager,
		func(p dps.RegistrationStatePage) []dps.DeviceRegistrationState { return p.Items }, registrationColumns, registrationRow)
	if err != nil || n != pages {
		t.Fatalf("n=%d err=%v", n, err)
	}
	for i, at := range w.fetchedAtRow {
		if at != i+1 {
			t.Errorf("row %d written after %d pages were fetched; want %d", i+1, at, i+1)
		}
	}
}

type pageRecorder struct {
	fetched      *int
	lines        int
	fetchedAtRow []int
}

func (p *pageRecorder) Write(b []byte) (int, error) {
	for range bytes.Count(b, []byte("\n")) {
		if p.lines > 0 { // skip the header
			p.fetchedAtRow = append(p.fetchedAtRow, *p.fetched)
		}
		p.lines++
	}
	return len(b), nil
}

func TestTableColumnsAreFixed(t *testing.T) {
	var b bytes.Buffer
	tw := newTable(&b, column{"A", 4}, column{"B", 3}, column{"C", 0})
	tw.row("abcdefgh", "x", "tail end")
	tw.row("ab", "", "z")
	want := "A     B    C\nabc…  x    tail end\nab         z\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

// Deleting a group with its records answers --output json like every other
// delete: with a JSON document (the clean-up report) and nothing else.
func TestGroupsDeleteWithRegistrationsJSON(t *testing.T) {
	c := newCLI(t)
	out := c.ok("groups", "delete", emulator.DemoHashedGroup, "--with-registrations", "--output", "json")
	var report struct {
		Summary cleanup.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	o := report.Summary.Outcomes
	if o[cleanup.DeleteGroup][cleanup.OutcomeDeleted] != 1 || o[cleanup.DeleteRecord][cleanup.OutcomeDeleted] == 0 || len(report.Summary.Failures) != 0 {
		t.Errorf("summary %+v, want the group and its records deleted", report.Summary)
	}
	c.fails(1, []string{"groups", "show", emulator.DemoHashedGroup}, "does not exist")
}

// groups update --file writes a group's JSON (as "groups show -o json"
// prints it, keys left out) over the group, If-Match the file's ETag: the
// keys stay, and a file older than the group is refused, not written.
func TestGroupsUpdateFromFile(t *testing.T) {
	c := newCLI(t)
	out := c.ok("groups", "show", emulator.TutorialGroupID, "--output", "json")
	var g dps.EnrollmentGroup
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatal(err)
	}
	g.AllocationPolicy = dps.AllocationHashed
	g.InitialTwin = &dps.InitialTwin{Tags: dps.TwinCollection{"site": "oslo"}}
	b, _ := json.Marshal(g)
	file := filepath.Join(t.TempDir(), "group.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("groups", "update", emulator.TutorialGroupID, "--file", file)
	var now dps.EnrollmentGroup
	if err := json.Unmarshal([]byte(c.ok("groups", "show", emulator.TutorialGroupID, "--output", "json", "--show-keys")), &now); err != nil {
		t.Fatal(err)
	}
	if now.AllocationPolicy != dps.AllocationHashed || now.InitialTwin == nil || now.InitialTwin.Tags["site"] != "oslo" ||
		now.Attestation.SymmetricKey == nil || now.Attestation.SymmetricKey.PrimaryKey.Reveal() != emulator.TutorialGroupKey {
		t.Fatalf("after update --file: %+v (keys %+v)", now, now.Attestation.SymmetricKey)
	}
	// The same file again: its ETag is stale now.
	c.fails(1, []string{"groups", "update", emulator.TutorialGroupID, "--file", file}, "412 Precondition Failed", "read it again")
	c.fails(2, []string{"groups", "update", "other-group", "--file", file}, "names group", emulator.TutorialGroupID)
	if err := os.WriteFile(file, []byte("{\"enrollmentGroupId\": 1}"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails(2, []string{"groups", "update", emulator.TutorialGroupID, "--file", file}, "--file", "enrollmentGroupId")
}
