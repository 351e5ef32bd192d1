package tui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps/inventory"
)

// runUntil runs cmd and feeds routed results to update until done says so
// (a stream re-arms itself one message at a time).
func runUntil(t *testing.T, update func(tea.Msg) tea.Cmd, cmd tea.Cmd, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for cmd != nil && !done() {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not end")
		}
		msg := cmd()
		r, ok := msg.(routed)
		if !ok {
			t.Fatalf("unexpected message %T", msg)
		}
		cmd = update(r.msg)
	}
}

func TestQuotaCountsTheDPS(t *testing.T) {
	target, emu := startEmulator(t, 0)
	if err := emu.SeedRegistrations(context.Background(), "hashed-fleet", 2500); err != nil { // on top of the demo's 36
		t.Fatal(err)
	}
	c := testCommon(t, 120, 30)
	c.Target = target
	v := newQuotaView(c)
	var pages []int
	update := func(msg tea.Msg) tea.Cmd {
		if m, ok := msg.(streamMsg[inventory.Progress, inventory.Counts]); ok && !m.end {
			pages = append(pages, m.progress.Records)
		}
		return v.Update(msg)
	}
	runUntil(t, update, v.Init(), func() bool { return !v.Busy() })
	if v.c.quota == nil {
		t.Fatalf("no count; view:\n%s", plain(v.View()))
	}
	got := plain(v.View())
	for _, w := range []string{"registrations", "2,536 / 1,000,000", "enrollment groups (symmetric key)", "2 / 100", "fixed",
		"linked IoT hubs", "hashed-fleet", "2,536", "mylegacydevices", "quotas and limits"} {
		if !strings.Contains(got, w) {
			t.Errorf("view lacks %q:\n%s", w, got)
		}
	}
	if strings.Index(got, "hashed-fleet") > strings.Index(got, "mylegacydevices") {
		t.Errorf("groups not largest first:\n%s", got)
	}
	if len(pages) < 3 {
		t.Errorf("progress %v: want the count streamed page by page", pages)
	}

	// At 80 columns nothing is cut: the bars give way, notes wrap.
	v.c.Width = 80
	v.SetSize(80, 30)
	for _, l := range strings.Split(plain(v.View()), "\n") {
		if ansi.StringWidth(l) > 80 {
			t.Errorf("line wider than 80: %q", l)
		}
	}

	// Cached for the session: a new :quota view shows it without counting.
	again := newQuotaView(c)
	if again.Init() != nil || again.Busy() || !strings.Contains(plain(again.View()), "2,536") {
		t.Errorf("the count was not kept:\n%s", plain(again.View()))
	}
	// r counts again.
	if err := emu.SeedRegistrations(context.Background(), "more", 5); err != nil {
		t.Fatal(err)
	}
	first := c.quota
	runUntil(t, again.Update, again.Update(press("r")), func() bool { return !again.Busy() })
	if c.quota == first || !strings.Contains(plain(again.View()), "2,536 / 1,000,000") {
		t.Errorf("r did not count again:\n%s", plain(again.View()))
	}
}

func TestQuotaEscStopsTheCount(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 100, 30)
	c.Target = target
	v := newQuotaView(c)
	cmd := v.Init()
	if !v.Busy() || !v.Escape() || v.Busy() {
		t.Fatal("esc did not stop the count")
	}
	if v.Escape() {
		t.Error("a second esc should leave the view")
	}
	// What the stopped count still sends is stale and dropped.
	runUntil(t, v.Update, cmd, func() bool { return false })
	if c.quota != nil || !strings.Contains(plain(v.View()), "count stopped") {
		t.Errorf("quota %v, view:\n%s", c.quota, plain(v.View()))
	}
}

func TestExportWritesTheFile(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.csv")
	v := newExportView(c)
	v.Init()
	typeText(v.Update, "hashed-fleet")
	v.Update(press("tab"))
	v.f.Set(exportFormat, "csv")
	v.Update(press("tab"))
	v.f.Set(exportFile, file)
	runUntil(t, v.Update, v.Update(press("enter")), func() bool { return !v.Busy() })
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v; view:\n%s", err, plain(v.View()))
	}
	if lines := strings.Count(string(b), "\n"); lines != 37 || !strings.HasPrefix(string(b), "registrationId,") {
		t.Errorf("%d lines:\n%s", lines, b)
	}
	if got := plain(v.View()); !strings.Contains(got, "Exported 36 records to "+file) {
		t.Errorf("view:\n%s", got)
	}

	// The file exists now: the first enter asks, the second replaces.
	os.WriteFile(file, []byte("keep\n"), 0o600)
	runUntil(t, v.Update, v.Update(press("enter")), func() bool { return !v.Busy() })
	if b, _ := os.ReadFile(file); string(b) != "keep\n" || !strings.Contains(plain(v.View()), "exists; enter again replaces it") {
		t.Fatalf("replaced without asking: %q\n%s", b, plain(v.View()))
	}
	runUntil(t, v.Update, v.Update(press("enter")), func() bool { return !v.Busy() })
	if b, _ := os.ReadFile(file); strings.Count(string(b), "\n") != 37 {
		t.Errorf("not replaced: %q", b)
	}

	// Typing the format moves the default file name's extension with it.
	d := newExportView(c)
	d.Init()
	d.Update(press("tab"))
	for range 5 {
		d.Update(press("backspace"))
	}
	typeText(d.Update, "csv")
	if got := d.f.Value(exportFile); got != "registrations.csv" {
		t.Errorf("file %q after typing csv", got)
	}

	v.f.Set(exportFormat, "xml")
	if v.Update(press("enter")); v.Busy() || !strings.Contains(plain(v.View()), `format "xml": use csv or jsonl`) {
		t.Errorf("bad format:\n%s", plain(v.View()))
	}
}

func TestExportShowsABarAndEscLeavesNoFile(t *testing.T) {
	target, emu := startEmulator(t, 0)
	if err := emu.SeedRegistrations(context.Background(), "hashed-fleet", 20000); err != nil {
		t.Fatal(err)
	}
	c := testCommon(t, 120, 30)
	c.Target = target
	q := newQuotaView(c)
	runUntil(t, q.Update, q.Init(), func() bool { return !q.Busy() })

	file := filepath.Join(t.TempDir(), "all.jsonl")
	v := newExportView(c)
	v.f.Set(exportFile, file)
	cmd := v.Update(press("enter"))
	var sawBar bool
	runUntil(t, func(msg tea.Msg) tea.Cmd {
		next := v.Update(msg)
		if view := plain(v.View()); v.Busy() && v.done > 0 && strings.Contains(view, "of 20,036 records") {
			sawBar = true
			v.Escape()
		}
		return next
	}, cmd, func() bool { return sawBar })
	if !sawBar {
		t.Fatalf("no progress bar:\n%s", plain(v.View()))
	}
	// The stopped export removes its temporary file and never writes file.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errTmp := os.Stat(file + ".tmp")
		_, errFile := os.Stat(file)
		if os.IsNotExist(errTmp) && os.IsNotExist(errFile) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: tmp %v, file %v", errTmp, errFile)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(plain(v.View()), "export stopped; nothing was written") {
		t.Errorf("view:\n%s", plain(v.View()))
	}
}
