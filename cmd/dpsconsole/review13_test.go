package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Outside review of #13.

// Two hub devices without a record are "2 hub devices without a
// registration record", not "2 hub device without a registration records".
func TestCleanupCountsUnregisteredDevicesInPlainEnglish(t *testing.T) {
	c := newCLI(t)
	c.ok("registrations", "delete", "fleet-sensor-001", "fleet-sensor-002")
	out := c.ok("cleanup", "--dry-run")
	if !strings.Contains(out, "2 hub devices without a registration record, kept") {
		t.Errorf("dry run:\n%s", out)
	}
}

// The documented round trip, `groups show ID -o json > f` then `groups
// update ID --file f`, keeps the webhook URL: show masks its password and
// query, and writing the mask back destroyed the function key.
func TestGroupUpdateFromShownJSONKeepsTheWebhookURL(t *testing.T) {
	c := newCLI(t)
	const hook = "https://user:pw@fn.example/api/alloc?code=SECRET123"
	c.ok("groups", "create", "hooky", "--webhook-url", hook)
	shown := c.ok("groups", "show", "hooky", "--output", "json")
	if strings.Contains(shown, "SECRET123") {
		t.Fatalf("show printed the function key:\n%s", shown)
	}
	file := filepath.Join(t.TempDir(), "group.json")
	if err := os.WriteFile(file, []byte(shown), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("groups", "update", "hooky", "--file", file)
	if got := c.ok("groups", "show", "hooky", "--output", "json", "--show-keys"); !strings.Contains(got, hook) {
		t.Errorf("after update --file the webhook URL is not %s:\n%s", hook, got)
	}
	// A URL changed around its masks is refused, not written masked.
	changed := strings.Replace(shown, "fn.example", "fn2.example", 1)
	if err := os.WriteFile(file, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails(2, []string{"groups", "update", "hooky", "--file", file, "--etag", "*"}, "masked password or query", "--show-keys")
	if got := c.ok("groups", "show", "hooky", "--output", "json", "--show-keys"); !strings.Contains(got, hook) {
		t.Errorf("a refused update changed the webhook URL:\n%s", got)
	}
	// A whole new URL is written.
	c.ok("groups", "update", "hooky", "--webhook-url", "https://fn2.example/api/alloc?code=NEW")
	if got := c.ok("groups", "show", "hooky", "--output", "json", "--show-keys"); !strings.Contains(got, "fn2.example/api/alloc?code=NEW") {
		t.Errorf("a new webhook URL was not written:\n%s", got)
	}
}

// An export of a group that does not exist, and whose ID no record
// carries, says so, as registrations list does; before, it reported
// "exported 0 records" as for an empty group.
func TestExportOfAnUnknownGroupSaysSo(t *testing.T) {
	c := newCLI(t)
	file := filepath.Join(t.TempDir(), "x.jsonl")
	code, _, errOut := c.run("registrations", "export", "--group", "nosuch", "--format", "jsonl", "--output-file", file)
	if code != 0 || !strings.Contains(errOut, `no enrollment group "nosuch" exists, and no records carry that group ID`) {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}
