package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
)

// A line past the reader's limit costs only itself, and a UTF-8 byte-order
// mark (as Windows editors write) is not part of the first line.
func TestEnrollmentsImportLongLineAndBOM(t *testing.T) {
	c := newCLI(t)
	huge := `{"registrationId":"huge","x":"` + strings.Repeat("a", 4<<20) + `"}`
	file := writeFile(t, "e.jsonl", "\xef\xbb\xbf"+`{"registrationId":"bom-1"}`+"\n"+huge+"\n"+`{"registrationId":"after-1"}`+"\n")
	errOut := c.fails(1, []string{"enrollments", "import", file}, "imported 2 of 3 enrollments; 1 failed")
	if !strings.Contains(errOut, "line 2: the line is longer than 4 MiB") || strings.Contains(errOut, "line 1") || strings.Contains(errOut, "line 3") {
		t.Errorf("stderr:\n%s", errOut)
	}
	for _, id := range []string{"bom-1", "after-1"} {
		c.ok("enrollments", "show", id)
	}
}

// Every flag whose empty value means nothing refuses it, before any work.
func TestEmptyFlagValuesAreUsageErrors(t *testing.T) {
	c := newCLI(t)
	ids := writeFile(t, "ids.txt", "retired-sensors\n")
	for _, args := range [][]string{
		{"cleanup", "--resume", ""},
		{"cleanup", "--dry-run", "--group-ids-file", ""},
		{"--state-dir", "", "groups", "list"},
		{"--connection-string", "", "groups", "list"},
		{"--ca-file", "", "groups", "list"},
		{"groups", "create", "g", "--iot-hubs", ""},
		{"groups", "create", "g", "--iot-hubs", "a,,b"},
		{"groups", "delete", "mylegacydevices", "--etag", ""},
		{"enrollments", "create", "e-1", "--device-id", ""},
		{"register", "--registration-id", "d-1", "--group", "mylegacydevices", "--id-scope", ""},
		{"keys", "derive", "--group-key", tutGroupKey, "--registration-id", "a", "--output-file", ""},
		{"keys", "derive", "--group-key", tutGroupKey, "--input", ids, "--format", ""},
		{"emulator", "--https", "127.0.0.1:0", "--data", ""},
		{"emulator", "--https", "127.0.0.1:0", "--data", t.TempDir(), "--hub", ""},
	} {
		code, _, errOut := c.run(args...)
		flag := ""
		for i, a := range args {
			if a == "" || strings.Contains(a, ",,") {
				flag = args[i-1]
			}
		}
		if code != exitUsage || !mentions(errOut, "flag "+flag+" is empty") {
			t.Errorf("%q: exit %d, stderr %q; want %d naming the empty %s", args, code, errOut, exitUsage, flag)
		}
	}
	// Nothing above ran: the group survived its unconditional delete.
	c.ok("groups", "show", "mylegacydevices")
}

// The JSON of a group or enrollment hides the webhook's credentials as the
// table does, unless --show-keys.
func TestJSONMasksWebhookCredentials(t *testing.T) {
	c := newCLI(t)
	hook := "https://user:PASSWORD@127.0.0.1:1/api?code=SECRET&other=VALUE"
	secrets := []string{"PASSWORD", "SECRET", "VALUE"}
	hidden := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %s:\n%s", what, s, out)
			}
		}
		if !json.Valid([]byte(out)) {
			t.Errorf("%s is not JSON:\n%s", what, out)
		}
	}
	hidden("groups create -o json", c.ok("groups", "create", "hooked", "--webhook-url", hook, "-o", "json"))
	hidden("groups show -o json", c.ok("groups", "show", "hooked", "-o", "json"))
	hidden("groups list -o json", c.ok("groups", "list", "-o", "json"))
	hidden("groups update -o json", c.ok("groups", "update", "hooked", "--edge", "-o", "json"))
	hidden("enrollments create -o json", c.ok("enrollments", "create", "hooked-1", "--webhook-url", hook, "-o", "json"))
	hidden("enrollments show -o json", c.ok("enrollments", "show", "hooked-1", "-o", "json"))
	hidden("enrollments list -o json", c.ok("enrollments", "list", "-o", "json"))

	var g dps.EnrollmentGroup
	if err := json.Unmarshal([]byte(c.ok("groups", "show", "hooked", "-o", "json", "--show-keys")), &g); err != nil ||
		g.CustomAllocationDefinition == nil || g.CustomAllocationDefinition.WebhookURL != hook {
		t.Errorf("groups show -o json --show-keys: %+v %v; want the whole webhook URL", g.CustomAllocationDefinition, err)
	}
}

// One rule: 0 ok, 1 some input data invalid (or the service refused), 2 the
// command line is wrong; an invalid ID argument and a file that cannot be
// read are command-line mistakes, found before any request.
func TestExitCodeRule(t *testing.T) {
	c := newCLI(t)
	t.Setenv(groupKeyEnv, "")
	dir := t.TempDir()
	missing := filepath.Join(dir, "none")
	keyFile := writeFile(t, "group.key", tutGroupKey)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"registrations", "list", "--group", "a b"}, `invalid --group "a b": character 2: a space`},
		{[]string{"registrations", "show", "a b"}, `invalid registration ID "a b"`},
		{[]string{"registrations", "delete", "fleet-sensor-001", "a/b"}, `invalid registration ID "a/b"`},
		{[]string{"groups", "show", "a/b"}, `invalid group ID "a/b"`},
		{[]string{"groups", "update", "a/b", "--edge"}, `invalid group ID "a/b"`},
		{[]string{"groups", "delete", "a/b"}, `invalid group ID "a/b"`},
		{[]string{"enrollments", "show", "a b"}, `invalid registration ID "a b"`},
		{[]string{"enrollments", "update", "a b", "--edge"}, `invalid registration ID "a b"`},
		{[]string{"enrollments", "delete", "a b"}, `invalid registration ID "a b"`},
		{[]string{"register", "--registration-id", "d-1", "--group", "a b"}, `invalid --group "a b"`},
		{[]string{"cleanup", "--resume", "../x"}, `--resume "../x"`},
		{[]string{"enrollments", "import", missing}, "no such file"},
		{[]string{"enrollments", "import", dir}, "is a directory"},
		{[]string{"keys", "derive", "--group-key-file", missing, "--registration-id", "a"}, "no such file"},
		{[]string{"keys", "derive", "--group-key", "abc", "--registration-id", "a"}, "group key from --group-key"},
		{[]string{"keys", "derive", "--group-key-file", keyFile, "--input", missing}, "no such file"},
		{[]string{"keys", "derive", "--group-key-file", keyFile, "--registration-id", "dev:"}, `invalid --registration-id "dev:"`},
		{[]string{"keys", "derive", "--group-key-file", keyFile, "--registration-id", "a", "--output-file", filepath.Join(missing, "f")}, "no such file"},
		{[]string{"keys", "sas", "--resource", "h", "--key", "short"}, "invalid key"},
		{[]string{"keys", "sas", "--resource", "h", "--key-file", missing}, "no such file"},
		{[]string{"keys", "sas", "--resource", "h", "--key", tutDevKey, "--ttl", "3000000h"}, "at most 2562047h"},
		{[]string{"emulator", "--fault-rate", "NaN"}, "from 0 to 1"},
		{[]string{"emulator", "--fault-rate", "-0.5"}, "from 0 to 1"},
		{[]string{"emulator", "--https", "localhost"}, `invalid --https "localhost": give host:port`},
		{[]string{"emulator", "--hub", "127.0.0.1:0", "--hub", "127.0.0.2"}, `invalid --hub "127.0.0.2"`},
		{[]string{"emulator", "--mqtt", "127.0.0.1:"}, `invalid --mqtt "127.0.0.1:"`},
		{[]string{"emulator", "--mqtt", "off", "--seed", "x"}, `--seed "x"`}, // off is no MQTT, not a bad address
	} {
		c.fails(exitUsage, tc.args, tc.want)
	}
	// The valid ID given with the invalid one was not deleted.
	c.ok("registrations", "show", "fleet-sensor-001")

	// Data the command reads may be partly invalid: exit 1, the rest done.
	ids := writeFile(t, "ids.txt", "a\nbad id\n")
	if code, out, _ := c.run("keys", "derive", "--group-key-file", keyFile, "--input", ids); code != exitInvalid || !strings.Contains(out, "a,") {
		t.Errorf("keys derive with one bad line: exit %d, stdout %q; want 1 and the good key", code, out)
	}

	// --help says the rule.
	for _, args := range [][]string{{"--help"}, {"keys", "derive", "--help"}, {"enrollments", "import", "--help"}, {"groups", "show", "--help"}, {"cleanup", "--help"}} {
		out := strings.Join(strings.Fields(c.ok(args...)), " ")
		if !strings.Contains(out, "Exit status: 0 ok; 1 some input data invalid or refused") || !strings.Contains(out, "2 a command-line mistake") {
			t.Errorf("%v does not state the exit statuses:\n%s", args, out)
		}
	}
}

// A message names a file once ("read adir: read adir: is a directory" said
// it twice).
func TestFileErrorsSayItOnce(t *testing.T) {
	c := newCLI(t)
	t.Setenv(groupKeyEnv, "")
	dir := filepath.Join(t.TempDir(), "zq-dir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "group.key", tutGroupKey)
	for _, args := range [][]string{
		{"enrollments", "import", dir},
		{"keys", "derive", "--group-key-file", dir, "--registration-id", "a"},
		{"keys", "derive", "--group-key-file", keyFile, "--input", dir},
		{"keys", "sas", "--resource", "h", "--key-file", dir},
		{"cleanup", "--dry-run", "--group-ids-file", dir},
	} {
		errOut := c.fails(exitUsage, args, "is a directory")
		flat := strings.Join(strings.Fields(errOut), "")
		if n := strings.Count(flat, "zq-dir"); n != 1 {
			t.Errorf("%v names the file %d times:\n%s", args, n, errOut)
		}
	}
	// A state dir that is a file: the emulator is named once.
	stateFile := writeFile(t, "state", "")
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"--state-dir", stateFile, "groups", "list"}, stdio{strings.NewReader(""), &out, &errb}); code != exitInvalid ||
		strings.Contains(errb.String(), "emulator: emulator") || strings.Contains(errb.String(), ": emulator:") || !strings.Contains(errb.String(), "not a directory") {
		t.Errorf("state dir is a file: exit %d\n%s", code, errb.String())
	}
}

// Control bytes from input (an ID, a file line, a flag name) are shown
// escaped, never sent to the terminal.
func TestControlBytesAreEscaped(t *testing.T) {
	c := newCLI(t)
	file := writeFile(t, "e.jsonl", `{"registrationId":"red\u001b[31m"}`+"\n"+`{"registrationId":"two\nlines"}`+"\n")
	errOut := c.fails(1, []string{"enrollments", "import", file}, `line 1 "red\x1b[31m":`, `line 2 "two\nlines":`)
	if strings.ContainsAny(errOut, "\x1b") || strings.Contains(errOut, "two\nlines") {
		t.Errorf("import echoes control bytes:\n%q", errOut)
	}
	for _, args := range [][]string{
		{"groups", "show", "a\x1b[2Jb"},
		{"registrations", "list", "--group", "a\x1b[2Jb"},
		{"groups", "list", "--\x1b[2Jflag"},
		{"register", "--registration-id", "d-1", "--group", "mylegacydevices", "--id-scope", "0ne\x1b[2J"},
	} {
		_, out, errOut := c.run(args...)
		if strings.Contains(out+errOut, "\x1b[2J") || !strings.Contains(out+errOut, `\x1b[2J`) {
			t.Errorf("%q: output does not escape ESC:\n%q", args, out+errOut)
		}
	}
}

// A missing resource is said once, not again in DPS's words ("... does not
// exist (DPS answered 404 Not Found: ... was not found ...)").
func TestNotFoundSaysItOnce(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"groups", "show", "no-such"}, {"enrollments", "delete", "no-such"}, {"registrations", "show", "no-such"}} {
		errOut := c.fails(exitInvalid, args, `"no-such" does not exist (DPS answered 404, error code 404`, "tracking ID")
		if strings.Contains(errOut, "not found") || strings.Count(errOut, "no-such") != 1 {
			t.Errorf("%v repeats itself:\n%s", args, errOut)
		}
	}
}

func TestReadLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a", "1:a|"},
		{"a\r\nb\n", "1:a|2:b|"},
		{"\xef\xbb\xbfa\n\xef\xbb\xbfb", "1:a|2:\xef\xbb\xbfb|"}, // only the first line's BOM is one
		{"\n\n", "1:|2:|"},
		{"12345\n123456\nok\n1234567", "1:12345|2:12345+|3:ok|4:12345+|"},
		{"12345\r\n", "1:12345|"},
	} {
		var got strings.Builder
		err := readLines(strings.NewReader(tc.in), 5, func(n int, line []byte, tooLong bool) {
			if tooLong {
				line = []byte("12345+")
			}
			fmt.Fprintf(&got, "%d:%s|", n, line)
		})
		if err != nil || got.String() != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got.String(), err, tc.want)
		}
	}
	// A line far past the reader's buffer costs only itself.
	long := strings.Repeat("x", 200<<10)
	var lines []string
	readLines(strings.NewReader("a\n"+long+"\nb"), 100<<10, func(n int, line []byte, tooLong bool) {
		lines = append(lines, fmt.Sprintf("%d%s %v", n, line, tooLong))
	})
	if strings.Join(lines, ",") != "1a false,2 true,3b false" {
		t.Errorf("got %q", lines)
	}
}
