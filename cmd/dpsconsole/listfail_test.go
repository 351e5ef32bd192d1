package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// TestFailedListPrintsNothingOnStdout checks that a listing whose first
// page fails writes no header, no "[" and no line to stdout: only the error,
// on stderr.
func TestFailedListPrintsNothingOnStdout(t *testing.T) {
	c := newCLI(t)
	a := &app{stateDir: c.stateDir}
	tg, err := a.openTarget(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	env := tg.emu.Env()
	// The emulator as a standalone DPS, with a wrong key: it answers 401.
	wrongKey := regexp.MustCompile(`SharedAccessKey=[^;]*`).ReplaceAllString(env.DPSConnectionString, "SharedAccessKey="+testPrimary)
	t.Setenv("DPS_CONNECTION_STRING", wrongKey)
	t.Setenv("DPS_CA_FILE", env.CAFile)
	for _, list := range [][]string{{"groups", "list"}, {"enrollments", "list"}, {"registrations", "list", "--group", "mylegacydevices"}} {
		for _, output := range []string{outputTable, outputJSON, outputJSONL} {
			args := append(append([]string{}, list...), "--output", output)
			code, out, errOut := c.run(args...)
			if code != exitInvalid || out != "" || !strings.Contains(errOut, "401") {
				t.Errorf("%v: exit %d, want %d with nothing on stdout\nstdout: %q\nstderr: %s", args, code, exitInvalid, out, errOut)
			}
		}
	}
}

// TestFailedTargetsListPrintsNothingOnStdout: targets list reads every
// subscription before it prints, so a failed sign-in leaves stdout empty.
func TestFailedTargetsListPrintsNothingOnStdout(t *testing.T) {
	c, _ := entraEmulator(t, emulator.Options{}, true)
	t.Setenv("AZURE_CLIENT_SECRET", "wrong-secret")
	for _, output := range []string{outputTable, outputJSON, outputJSONL} {
		code, out, errOut := c.run("targets", "list", "--output", output)
		if code != exitInvalid || out != "" {
			t.Errorf("targets list --output %s: exit %d, want %d with nothing on stdout\nstdout: %q\nstderr: %s", output, code, exitInvalid, out, errOut)
		}
	}
}
