package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// The console's log is bounded: at its cap it is rotated, one old file is
// kept, and both stay 0600.
func TestConsoleLogRotatesAtItsCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), consoleLogName)
	logger, f, err := openConsoleLog(path, slog.LevelInfo, 4096)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		logger.Info("a line of a long session", "n", i, "padding", strings.Repeat("x", 40))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 4096 || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %d bytes, mode %v; want at most 4096, 0600", p, fi.Size(), fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".2"); err == nil {
		t.Fatal("only one old file is kept")
	}
	last, _ := os.ReadFile(path)
	if !strings.Contains(string(last), `"n":499`) {
		t.Fatal("the newest line belongs in the live file")
	}
}

// Per-request lines are written at debug only, and redacted there; the
// default level (info) leaves them out.
func TestConsoleLogLevel(t *testing.T) {
	emu, err := emulator.Start(context.Background(), emulator.Options{DataDir: t.TempDir(), Seed: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	tg, err := emulatorTarget(emu)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.transport.CloseIdleConnections()
	cs, err := keys.ParseServiceConnectionString(emu.Env().DPSConnectionString)
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []string{"info", "debug"} {
		l, err := parseLogLevel(level)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), consoleLogName)
		logger, f, err := openConsoleLog(path, l, consoleLogMax)
		if err != nil {
			t.Fatal(err)
		}
		logger.Info("console started")
		if _, err := tg.client.NewEnrollmentGroupPager(&dps.PagerOptions{PageSize: 1}).NextPage(context.Background()); err != nil {
			t.Fatal(err)
		}
		dps.LogToSlog(nil)
		f.Close()
		b, _ := os.ReadFile(path)
		log := string(b)
		requests := strings.Contains(log, `"msg":"azcore"`)
		if !strings.Contains(log, "console started") || requests != (level == "debug") {
			t.Fatalf("at %s: per-request lines %v:\n%s", level, requests, log)
		}
		if strings.Contains(log, "sig=") || strings.Contains(log, cs.SharedAccessKey.Base64()) {
			t.Fatalf("at %s the log holds a token or the key:\n%s", level, log)
		}
	}
}

func TestConsoleRefusesAnUnknownLogLevel(t *testing.T) {
	var out, errOut syncBuffer
	code := run(context.Background(), []string{"--log-level", "verbose", "--state-dir", t.TempDir()}, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	if code != exitUsage || !strings.Contains(errOut.String(), `--log-level "verbose" is not a level: use debug, info, warn or error`) {
		t.Fatalf("exit %d:\n%s", code, errOut.String())
	}
}

func TestResumeHintsNameTheJobAndTheCommand(t *testing.T) {
	if got := resumeHints(nil, "/s", false); got != "" {
		t.Fatalf("no job, no hint: %q", got)
	}
	got := resumeHints([]string{"20261122-203256-a1b2c3"}, "/tmp/my state", true)
	want := "clean-up job 20261122-203256-a1b2c3 was stopped before it finished; the rest is logged, resume it with (on the same target):\n" +
		"  dpsconsole cleanup --resume 20261122-203256-a1b2c3 --state-dir '/tmp/my state'\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
