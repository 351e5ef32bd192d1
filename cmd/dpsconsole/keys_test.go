package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/keys"
)

// mentions reports whether s contains want, ignoring case (fang capitalises
// the first letter of an error).
func mentions(s, want string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(want))
}

// dps-protocol.md §5.1 tutorial vector.
const (
	tutGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	tutRegID    = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	tutDevKey   = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
)

func keysRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, stdio{in: strings.NewReader(stdin), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func deriveKey(t *testing.T, id string) string {
	t.Helper()
	k, err := keys.DeriveDeviceKeyString(tutGroupKey, id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeysDeriveSingleIsBare(t *testing.T) {
	t.Setenv(groupKeyEnv, "")
	keyFile := writeFile(t, "group.key", tutGroupKey+"\n")
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"flag", "", []string{"--group-key", tutGroupKey}},
		{"file", "", []string{"--group-key-file", keyFile}},
		{"env", tutGroupKey, nil},
	} {
		t.Setenv(groupKeyEnv, tc.env)
		code, out, errOut := keysRun(t, "", append([]string{"keys", "derive", "--registration-id", tutRegID}, tc.args...)...)
		if code != 0 || out != tutDevKey+"\n" || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exactly the key", tc.name, code, out, errOut)
		}
	}
}

func TestKeysDeriveSingleToFile(t *testing.T) {
	t.Setenv(groupKeyEnv, tutGroupKey)
	outFile := filepath.Join(t.TempDir(), "device.key")
	code, out, errOut := keysRun(t, "", "keys", "derive", "--registration-id", tutRegID, "--output-file", outFile)
	got, err := os.ReadFile(outFile)
	if code != 0 || out != "" || errOut != "" || err != nil || string(got) != tutDevKey+"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q, file %q (%v)", code, out, errOut, got, err)
	}
	if fi, _ := os.Stat(outFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestKeysDeriveUpperCaseWarns(t *testing.T) {
	t.Setenv(groupKeyEnv, tutGroupKey)
	code, out, errOut := keysRun(t, "", "keys", "derive", "--registration-id", strings.ToUpper(tutRegID))
	if code != 0 || out != "9GWVnYuoOLXlHc346XjhLRb9pKgIOrKSwxDRSOgnvXo=\n" || !strings.Contains(errOut, "upper-case") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestKeysDeriveRepeatedIDs(t *testing.T) {
	t.Setenv(groupKeyEnv, tutGroupKey)
	code, out, errOut := keysRun(t, "", "keys", "derive", "--registration-id", "a", "--registration-id", "b")
	want := "registration_id,device_key\na," + deriveKey(t, "a") + "\nb," + deriveKey(t, "b") + "\n"
	if code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0 and %q", code, out, errOut, want)
	}
	// An invalid ID on the command line is a usage error: every one is named
	// and no key is printed.
	code, out, errOut = keysRun(t, "", "keys", "derive", "--registration-id", "a", "--registration-id", "bad id", "--registration-id", "b/c")
	if code != 2 || out != "" || !strings.Contains(errOut, `Invalid --registration-id "bad id": character 4: a space`) || !strings.Contains(errOut, `"b/c": character 2`) {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 naming both bad IDs", code, out, errOut)
	}
	// --format on a single ID asks for a record rather than the bare key.
	code, out, _ = keysRun(t, "", "keys", "derive", "--registration-id", tutRegID, "--format", "json")
	var rec map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || rec["device_key"] != tutDevKey || rec["registration_id"] != tutRegID {
		t.Errorf("json single: exit %d, %q", code, out)
	}
}

func TestKeysDeriveBulk(t *testing.T) {
	t.Setenv(groupKeyEnv, "")
	keyFile := writeFile(t, "group.key", tutGroupKey)
	input := "# devices\n" + tutRegID + "\n\nbad/id\nDev-2\r\nlast."
	ids := writeFile(t, "ids.txt", input)
	wantCSV := "registration_id,device_key\n" + tutRegID + "," + tutDevKey + "\nDev-2," + deriveKey(t, "Dev-2") + "\n"

	code, out, errOut := keysRun(t, "", "keys", "derive", "--group-key-file", keyFile, "--input", ids)
	if code != 1 || out != wantCSV {
		t.Errorf("file → stdout: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"line 4: invalid registration ID: character 4: '/' is not allowed", "line 6: invalid registration ID: character 5: the ID ends with '.'", "upper-case letters (the first on line 5)", "2 keys derived; 2 invalid lines"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	outFile := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(outFile, []byte("old content that must go"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = keysRun(t, input, "keys", "derive", "--group-key-file", keyFile, "--input", "-", "--output-file", outFile, "--format", "json")
	got, err := os.ReadFile(outFile)
	if code != 1 || out != "" || err != nil {
		t.Fatalf("stdin → file: exit %d, stdout %q, %v", code, out, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 2 || lines[0] != `{"registration_id":"`+tutRegID+`","device_key":"`+tutDevKey+`"}` {
		t.Errorf("json output %q", got)
	}
	if fi, _ := os.Stat(outFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("output file mode %v, want 0600", fi.Mode().Perm())
	}

	code, out, errOut = keysRun(t, "a\nb\n", "keys", "derive", "--group-key-file", keyFile, "--input", "-")
	if code != 0 || strings.Count(out, "\n") != 3 || errOut != "" {
		t.Errorf("all valid: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestKeysDeriveErrors(t *testing.T) {
	t.Setenv(groupKeyEnv, "")
	keyFile := writeFile(t, "group.key", tutGroupKey)
	badKey := tutGroupKey[:40] + " " + tutGroupKey[41:] // a stray character the az CLI would drop
	for _, tc := range []struct {
		name string
		code int
		args []string
		want string
	}{
		{"no key", 2, []string{"--registration-id", "a"}, "--group-key-file"},
		{"two keys", 2, []string{"--group-key", tutGroupKey, "--group-key-file", keyFile, "--registration-id", "a"}, "not both"},
		{"no ids", 2, []string{"--group-key-file", keyFile}, "--registration-id"},
		{"ids and input", 2, []string{"--group-key-file", keyFile, "--registration-id", "a", "--input", "-"}, "not both"},
		{"bad format", 2, []string{"--group-key-file", keyFile, "--input", "-", "--format", "xml"}, "csv or json"},
		{"unknown flag", 2, []string{"--group-key-file", keyFile, "--id", "a"}, "unknown flag"},
		{"stray key character", 2, []string{"--group-key", badKey, "--registration-id", "a"}, "character 41"},
		{"missing key file", 2, []string{"--group-key-file", filepath.Join(t.TempDir(), "none"), "--registration-id", "a"}, "cannot read --group-key-file"},
		{"key file from stdin", 2, []string{"--group-key-file", "-", "--registration-id", "a"}, "--group-key-file takes a file, not standard input"},
		{"missing input", 2, []string{"--group-key-file", keyFile, "--input", filepath.Join(t.TempDir(), "none")}, "cannot read --input"},
		{"bad id", 2, []string{"--group-key-file", keyFile, "--registration-id", "dev:"}, "ends with ':'"},
		{"output is input", 2, []string{"--group-key-file", keyFile, "--input", keyFile, "--output-file", keyFile}, "erase the IDs"},
		{"output dir missing", 2, []string{"--group-key-file", keyFile, "--input", "-", "--output-file", filepath.Join(t.TempDir(), "no", "f")}, "cannot create --output-file"},
	} {
		code, out, errOut := keysRun(t, "a\n", append([]string{"keys", "derive"}, tc.args...)...)
		if code != tc.code || out != "" || !mentions(errOut, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d mentioning %q", tc.name, code, out, errOut, tc.code, tc.want)
		}
		if strings.Contains(errOut, tutGroupKey[:16]) {
			t.Errorf("%s: stderr reveals the group key", tc.name)
		}
	}
}

func TestKeysDeriveHelpExplainsHistory(t *testing.T) {
	code, out, _ := keysRun(t, "", "keys", "derive", "--help")
	if code != 0 || !strings.Contains(out, "shell history") || !strings.Contains(out, groupKeyEnv) {
		t.Errorf("exit %d, help:\n%s", code, out)
	}
}

func TestKeysGenerate(t *testing.T) {
	code, out, _ := keysRun(t, "", "keys", "generate")
	k, err := keys.ParseKey(out)
	if code != 0 || err != nil || len(k.Bytes()) != 64 || !strings.HasSuffix(out, "=\n") {
		t.Fatalf("exit %d, %q, %v", code, out, err)
	}
	if _, out2, _ := keysRun(t, "", "keys", "generate"); out2 == out {
		t.Error("two generated keys are equal")
	}
}

func TestKeysSAS(t *testing.T) {
	resource := "0ne00000A0A/registrations/" + tutRegID
	keyFile := writeFile(t, "device.key", tutDevKey+"\n")
	for _, args := range [][]string{
		{"--resource", resource, "--key", tutDevKey, "--policy", "registration", "--ttl", "2h"},
		{"--resource", resource, "--key-file", keyFile, "--policy", "registration", "--ttl", "2h"},
	} {
		code, out, errOut := keysRun(t, "", append([]string{"keys", "sas"}, args...)...)
		if code != 0 || errOut != "" || !strings.HasSuffix(out, "\n") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		sas, err := keys.ParseSAS(strings.TrimSuffix(out, "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := sas.Verify(keys.KeyFromBytes(mustDecode(t, tutDevKey)), resource, time.Now()); err != nil {
			t.Error(err)
		}
		if sas.KeyName != "registration" || time.Until(sas.Expiry) < 119*time.Minute || time.Until(sas.Expiry) > 121*time.Minute {
			t.Errorf("skn %q, expiry %v", sas.KeyName, sas.Expiry)
		}
		if !strings.Contains(out, "sr=0ne00000A0A%2Fregistrations%2F") {
			t.Errorf("sr not URL-encoded: %s", out)
		}
	}
	code, out, _ := keysRun(t, "", "keys", "sas", "--resource", "hub.azure-devices.net/devices/d1", "--key", tutDevKey)
	if code != 0 || strings.Contains(out, "skn=") {
		t.Errorf("hub device token: exit %d, %q", code, out)
	}
	for _, tc := range []struct {
		code int
		args []string
		want string
	}{
		{2, []string{"--key", tutDevKey}, "--resource"},
		{2, []string{"--resource", "h"}, "--key-file"},
		{2, []string{"--resource", "h", "--key", tutDevKey, "--key-file", keyFile}, "not both"},
		{2, []string{"--resource", "h", "--key", tutDevKey, "--ttl", "-1h"}, "--ttl"},
		{2, []string{"--resource", "h", "--key", tutDevKey, "--ttl", "soon"}, "give a duration"},
		{2, []string{"--resource", "h", "--key", "short"}, "invalid key"},
	} {
		code, out, errOut := keysRun(t, "", append([]string{"keys", "sas"}, tc.args...)...)
		if code != tc.code || out != "" || !mentions(errOut, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d mentioning %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	k, err := keys.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k.Bytes()
}

// TestKeysRefuseTargetFlags checks that the offline key tools refuse a flag
// that picks a DPS or signs in (it could have no effect), and still work
// with a connection string in the environment.
func TestKeysRefuseTargetFlags(t *testing.T) {
	t.Setenv(groupKeyEnv, "")
	for _, flags := range [][]string{
		{"--dps", "contoso-dps"}, {"--auth", "login"}, {"--target", "azure"}, {"--tenant", "contoso.onmicrosoft.com"},
		{"--resource-group", "iot-rg"}, {"--subscription", "Contoso IoT"}, {"--ca-file", "ca.pem"},
		{"--connection-string", "HostName=x;SharedAccessKeyName=y;SharedAccessKey=eg=="},
	} {
		for _, cmd := range [][]string{
			{"keys", "derive", "--group-key", tutGroupKey, "--registration-id", tutRegID},
			{"keys", "generate"},
			{"keys", "sas", "--resource", "h", "--key", tutGroupKey},
		} {
			args := append(append([]string{}, flags...), cmd...)
			code, out, errOut := keysRun(t, "", args...)
			if code != exitUsage || out != "" || !mentions(errOut, flags[0]) || !mentions(errOut, "works offline") {
				t.Errorf("%v: exit %d, want %d naming %s and saying it works offline\nstdout: %s\nstderr: %s", args, code, exitUsage, flags[0], out, errOut)
			}
		}
	}
	t.Setenv("DPS_CONNECTION_STRING", "HostName=x;SharedAccessKeyName=y;SharedAccessKey=eg==")
	if code, out, errOut := keysRun(t, "", "keys", "derive", "--group-key", tutGroupKey, "--registration-id", tutRegID); code != 0 || out != tutDevKey+"\n" {
		t.Errorf("with $DPS_CONNECTION_STRING: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}
