package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
)

func TestEnrollmentsCommands(t *testing.T) {
	c := newCLI(t)
	out := c.ok("enrollments", "create", "sensor-1", "--device-id", "dev-one", "--primary-key", testPrimary, "--secondary-key", testSecondary,
		"--initial-twin-properties", `{"interval":30}`)
	if !strings.Contains(out, "sensor-1") || !strings.Contains(out, "dev-one") || strings.Contains(out, testPrimary) {
		t.Errorf("create:\n%s", out)
	}
	c.fails(2, []string{"enrollments", "create", "bad/id"}, `invalid registration ID "bad/id": character 4: '/' is not allowed`)
	c.fails(1, []string{"enrollments", "create", "sensor-1"}, "already exists")
	if _, _, errOut := c.run("enrollments", "create", "Sensor-2"); !strings.Contains(errOut, "upper-case") {
		t.Errorf("no warning for an upper-case ID: %s", errOut)
	}

	c.ok("enrollments", "update", "sensor-1", "--provisioning-status", "disabled", "--device-id", "dev-1b")
	var e dps.IndividualEnrollment
	if err := json.Unmarshal([]byte(c.ok("enrollments", "show", "sensor-1", "--show-keys", "-o", "json")), &e); err != nil {
		t.Fatal(err)
	}
	if e.DeviceID != "dev-1b" || e.ProvisioningStatus != dps.ProvisioningDisabled || e.Attestation.SymmetricKey.SecondaryKey.Reveal() != testSecondary ||
		e.InitialTwin == nil || e.InitialTwin.Properties.Desired["interval"] != float64(30) {
		t.Errorf("after update: %+v", e)
	}

	out = c.ok("enrollments", "list")
	if !strings.HasPrefix(out, "REGISTRATION ID") || !strings.Contains(out, "sensor-1") {
		t.Errorf("list:\n%s", out)
	}
	c.fails(1, []string{"enrollments", "delete", "sensor-1", "--etag", `"stale"`}, "412")
	c.ok("enrollments", "delete", "sensor-1")
	c.fails(1, []string{"enrollments", "show", "sensor-1"}, "does not exist")
}

func TestEnrollmentsImport(t *testing.T) {
	c := newCLI(t)
	c.ok("enrollments", "create", "taken-1")
	var lines []string
	for i := range 23 {
		lines = append(lines, fmt.Sprintf(`{"registrationId":"imp-%02d"}`, i))
	}
	lines[3] = `{"registrationId":"imp-03",`                                                                            // line 4: broken JSON
	lines[5] = `{"registrationId":"bad id"}`                                                                            // line 6: invalid ID
	lines[8] = `{"registrationId":"imp-01"}`                                                                            // line 9: repeats line 2
	lines[12] = `{"registrationId":"taken-1"}`                                                                          // line 13: exists on the service
	lines[15] = `{"registrationId":"imp-15","attestation":{"type":"symmetricKey","symmetricKey":{"primaryKey":"abc"}}}` // line 16: bad key
	lines[17] = `{"registrationId":"imp-17"} {"registrationId":"imp-17b"}`                                              // line 18: two objects
	lines = append(lines, "", `{"registrationId":"imp-99","attestation":{"type":"symmetricKey"}}`)                      // blank line 24, line 25 good
	file := filepath.Join(t.TempDir(), "enrollments.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut := c.fails(1, []string{"enrollments", "import", file}, "imported 18 of 24 enrollments; 6 failed")
	for _, want := range []string{"line 4:", "line 18: not an enrollment in JSON: text follows", "line 6 bad id: invalid registration ID: character 4", "line 9 imp-01: the registration ID repeats line 2", "line 13 taken-1:", "line 16 imp-15: attestation.symmetricKey.primaryKey"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	var listed []dps.IndividualEnrollment
	if err := json.Unmarshal([]byte(c.ok("enrollments", "list", "-o", "json", "--page-size", "4")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 19 { // 18 imported + taken-1 (stdin-1 comes later)
		t.Errorf("%d enrollments listed, want 19", len(listed))
	}

	// Standard input works too.
	if code, out, errOut := c.runIn(`{"registrationId":"stdin-1"}`+"\n", "enrollments", "import", "-"); code != 0 || !strings.Contains(out, "imported 1 of 1") {
		t.Errorf("import -: exit %d\n%s%s", code, out, errOut)
	}

	// JSON report, and every line failing when all exist already.
	code, out, _ := c.run("enrollments", "import", file, "-o", "json")
	var rep struct {
		Imported int
		Failed   []importFailure
	}
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.Imported != 0 || len(rep.Failed) != 24 {
		t.Errorf("second import: exit %d, %+v\n%s", code, rep, out)
	}
}
