package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/inventory"
)

// shapedCLI is the demo emulator plus an individual enrollment ("solo")
// and a tutorial-group device, each registered: records in two groups and
// one individual enrollment.
func shapedCLI(t *testing.T) *cli {
	c := newCLI(t)
	c.ok("enrollments", "create", "solo", "--primary-key", testPrimary, "--secondary-key", testSecondary)
	c.ok("register", "--registration-id", "solo", "--device-key", testPrimary)
	c.ok("register", "--registration-id", "legacy-1", "--group", "mylegacydevices")
	return c
}

func jsonLines(t *testing.T, text string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for _, l := range lines {
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(l)); err != nil || b.String() != l {
			t.Fatalf("not a compact JSON line (%v): %s", err, l)
		}
	}
	return lines
}

func TestRegistrationsExport(t *testing.T) {
	c := shapedCLI(t)
	dir := t.TempDir()

	// JSON lines, every group and the individual enrollment: the group
	// records are the listings' own lines, byte for byte.
	file := filepath.Join(dir, "all.jsonl")
	c.ok("registrations", "export", "--format", "jsonl", "--output-file", file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got := jsonLines(t, string(b))
	want := slices.Concat(jsonLines(t, c.ok("registrations", "list", "--group", "hashed-fleet", "-o", "jsonl")),
		jsonLines(t, c.ok("registrations", "list", "--group", "mylegacydevices", "-o", "jsonl")))
	if len(got) != len(want)+1 || !slices.Equal(got[:len(want)], want) || !strings.Contains(got[len(want)], `"registrationId":"solo"`) {
		t.Fatalf("export: %d lines, want %d + solo; last %s", len(got), len(want), got[len(got)-1])
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	// CSV of one group, then of all.
	file = filepath.Join(dir, "fleet.csv")
	c.ok("registrations", "export", "--group", "hashed-fleet", "--format", "csv", "--output-file", file)
	rows := readCSV(t, file)
	if len(rows) != 37 || !slices.Equal(rows[0], inventory.CSVHeader) || rows[1][0] != "fleet-sensor-001" || rows[1][2] != "hashed-fleet" || rows[1][3] != "assigned" {
		t.Fatalf("csv of one group: %d rows; %q %q", len(rows), rows[0], rows[1])
	}
	c.ok("registrations", "export", "--format", "csv", "--output-file", file)
	rows = readCSV(t, file)
	if last := rows[len(rows)-1]; len(rows) != 39 || last[0] != "solo" || last[2] != "" || rows[37][0] != "legacy-1" || rows[37][2] != "mylegacydevices" {
		t.Fatalf("csv of all: %d rows; last two %q %q", len(rows), rows[37], last)
	}

	c.fails(2, []string{"registrations", "export", "--format", "xml", "--output-file", file}, "--format", `"xml"`, "csv or jsonl")
	c.fails(2, []string{"registrations", "export", "--format", "csv"}, "--output-file is required")
}

func TestRegistrationsExportToAnUnwritableFile(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	os.WriteFile(notDir, []byte("keep\n"), 0o644)
	for _, file := range []string{filepath.Join(notDir, "x.jsonl"), filepath.Join(dir, "missing", "x.jsonl"), dir} {
		c.fails(2, []string{"registrations", "export", "--format", "jsonl", "--output-file", file}, "cannot write the export file", file)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "plain" {
		t.Errorf("files left: %v", entries)
	}
	if b, _ := os.ReadFile(notDir); string(b) != "keep\n" {
		t.Errorf("plain file changed: %q", b)
	}
}

func readCSV(t *testing.T, file string) [][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestListJSONLines(t *testing.T) {
	c := shapedCLI(t)
	// Each line is the item the json output shows (same content, the
	// service's bytes instead of an indented re-encoding).
	for _, args := range [][]string{{"registrations", "list", "--group", "hashed-fleet"}, {"groups", "list"}, {"enrollments", "list"}} {
		lines := jsonLines(t, c.ok(append(args, "-o", "jsonl")...))
		var items []json.RawMessage
		if err := json.Unmarshal([]byte(c.ok(append(args, "-o", "json")...)), &items); err != nil || len(items) != len(lines) {
			t.Fatalf("%v: %d json items (%v), %d lines", args, len(items), err, len(lines))
		}
		for i := range items {
			var a, b any
			json.Unmarshal(items[i], &a)
			json.Unmarshal([]byte(lines[i]), &b)
			if ja, _ := json.Marshal(a); string(ja) != string(must(json.Marshal(b))) {
				t.Errorf("%v item %d:\njson  %s\njsonl %s", args, i, items[i], lines[i])
			}
		}
	}
	c.fails(2, []string{"groups", "list", "-o", "yaml"}, "use table, json or jsonl")

	// An item holding a secret is the one not passed through as is.
	c.ok("groups", "create", "hook", "--webhook-url", "https://127.0.0.1:1/api?code=SECRET")
	out := c.ok("groups", "list", "-o", "jsonl")
	if strings.Contains(out, "SECRET") || !strings.Contains(out, `"webhookUrl":"https://127.0.0.1:1/api?••••••••"`) || len(jsonLines(t, out)) != 3 {
		t.Errorf("jsonl shows the webhook code, or no masked URL:\n%s", out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestQuotaCommand(t *testing.T) {
	c := shapedCLI(t)
	var r quotaJSON
	if err := json.Unmarshal([]byte(c.ok("quota", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	for _, l := range r.Limits {
		used[l.Resource] = l.Used
	}
	want := map[string]int{"registrations": 38, "individual enrollments": 1, "enrollment groups (symmetric key)": 2,
		"enrollment groups (X.509 certificate)": 0, "linked IoT hubs": 2}
	if !maps.Equal(used, want) {
		t.Errorf("used %v, want %v", used, want)
	}
	wantGroups := []groupUse{{"hashed-fleet", "symmetricKey", 36, false}, {"mylegacydevices", "symmetricKey", 1, false}}
	if !slices.Equal(r.Groups, wantGroups) || r.Enrollments != (enrollmentUse{Count: 1, WithRecord: 1}) || r.Source != inventory.LimitsSource {
		t.Errorf("groups %+v, enrollments %+v, source %q", r.Groups, r.Enrollments, r.Source)
	}
	out := c.ok("quota")
	for _, w := range []string{"registrations", "38", "1000000", "enrollment groups (symmetric key)", "hashed-fleet", "quotas and limits"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
	c.fails(2, []string{"quota", "-o", "csv"}, "use table or json")
}
