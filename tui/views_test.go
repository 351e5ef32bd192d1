package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// viewHarness drives one view directly: Update, then its Cmds run as the
// Program would run them, results fed back; flashes are recorded.
type viewHarness struct {
	t       *testing.T
	v       view
	flashes []string
}

func (h *viewHarness) update(msg tea.Msg) tea.Cmd {
	if f, ok := msg.(flashMsg); ok {
		h.flashes = append(h.flashes, f.text)
		return nil
	}
	return h.v.Update(msg)
}

func (h *viewHarness) run(cmd tea.Cmd) { drain(h.t, h.update, cmd, 2000) }

func (h *viewHarness) press(keys ...string) {
	for _, k := range keys {
		h.run(h.update(press(k)))
	}
}

func (h *viewHarness) lastFlash() string {
	if len(h.flashes) == 0 {
		return ""
	}
	return h.flashes[len(h.flashes)-1]
}

func harness(t *testing.T, c *Common, v view) *viewHarness {
	v.SetSize(c.Width, c.Height)
	h := &viewHarness{t: t, v: v}
	h.run(v.Init())
	return h
}

func TestGroupsViewListsWithLazyCounts(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 20)
	c.Target = target
	j, err := cleanup.OpenJournal(t.TempDir(), target.Service.Host())
	if err != nil {
		t.Fatal(err)
	}
	target.Journal = j
	h := harness(t, c, newGroupsView(c))
	out := plain(h.v.View())
	for _, want := range []string{"hashed-fleet", "hashed", "mylegacydevices", "static", "enabled", "2/2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("groups view lacks %q:\n%s", want, out)
		}
	}
	g := h.v.(*groupsView)
	if got := g.counts[emulator.DemoHashedGroup]; got.n != 36 || got.pending {
		t.Fatalf("hashed-fleet count = %+v, want 36", got)
	}
	if h.v.Status() != "2 groups" {
		t.Fatalf("status %q", h.v.Status())
	}
	if seen := j.Groups(); len(seen) != 2 {
		t.Fatalf("the journal should know both listed groups: %+v", seen)
	}
}

func TestGroupViewMarksAllAcrossPagesAndDeletes(t *testing.T) {
	target, emu := startEmulator(t, 0)
	ctx := context.Background()
	if err := emu.SeedRegistrations(ctx, "big", 2500); err != nil {
		t.Fatal(err)
	}
	c := testCommon(t, 120, 30)
	c.Target = target
	h := harness(t, c, newGroupView(c, "big"))
	v := h.v.(*groupView)
	if v.table.Loaded() != recordPageSize || !v.table.More() {
		t.Fatalf("opening loads one page only: %d loaded, more=%v", v.table.Loaded(), v.table.More())
	}
	h.press("A")
	if want := "all 2,500 records of big marked, across every page"; h.lastFlash() != want {
		t.Fatalf("flash %q, want %q", h.lastFlash(), want)
	}
	h.press("space") // keep the first record
	if v.table.MarkedCount() != 2499 {
		t.Fatalf("marked %d", v.table.MarkedCount())
	}
	h.press("d")
	out := plain(h.v.View())
	if !strings.Contains(out, "Delete ALL 2,499 registration records of big (every page, loaded or not)?") ||
		!strings.Contains(out, "1 unmarked record is kept.") {
		t.Fatalf("confirmation should state the count across pages:\n%s", out)
	}
	h.press("y")
	if want := "deleted 2,499 registration records"; !strings.Contains(strings.Join(h.flashes, "|"), want) {
		t.Fatalf("flashes %q lack %q", h.flashes, want)
	}
	if v.table.Loaded() != 1 || v.table.More() {
		t.Fatalf("after the delete the group has %d records loaded (more=%v), want the kept one", v.table.Loaded(), v.table.More())
	}
	n, _, err := countRecords(ctx, target.Service, "big", 0)
	if err != nil || n != 1 {
		t.Fatalf("emulator still has %d records (%v)", n, err)
	}
}

func TestGroupViewRevealsAndCopiesKeys(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 200, 30)
	c.Target = target
	h := harness(t, c, newGroupView(c, emulator.TutorialGroupID))
	if out := plain(h.v.View()); strings.Contains(out, emulator.TutorialGroupKey) || !strings.Contains(out, "Primary key ••••••••") {
		t.Fatalf("keys must be masked:\n%s", out)
	}
	h.press("k") // vim's up: moves, never reveals
	if out := plain(h.v.View()); strings.Contains(out, emulator.TutorialGroupKey) {
		t.Fatalf("k must not reveal the keys:\n%s", out)
	}
	h.press("v")
	if out := plain(h.v.View()); !strings.Contains(out, emulator.TutorialGroupKey) {
		t.Fatalf("v reveals:\n%s", out)
	}
	cmd := h.v.Update(press("c"))
	found := false
	for _, c := range cmd().(tea.BatchMsg) {
		if m := c(); strings.Contains(strings.ToLower(fmtType(m)), "clipboard") {
			found = true
		}
	}
	if !found {
		t.Fatal("c should set the clipboard")
	}
	h.press("d")
	if !strings.Contains(h.lastFlash(), "nothing marked") {
		t.Fatalf("d with nothing marked: %q", h.lastFlash())
	}
}

func TestSimulateViewValidatesBeforeRunning(t *testing.T) {
	c := testCommon(t, 100, 24)
	v := newSimulateView(c, "", "")
	h := harness(t, c, v)
	h.press("esc", "enter")
	if !strings.Contains(v.err, "Registration ID: invalid registration ID: it is empty") {
		t.Fatalf("err %q", v.err)
	}
	v.f.Set(sfRegID, "dev-1")
	v.f.Set(sfPayload, "{oops")
	h.press("enter")
	if v.err != "Payload: not valid JSON" {
		t.Fatalf("err %q", v.err)
	}
	v.f.Set(sfPayload, "")
	h.press("enter")
	if !strings.Contains(v.err, "give a group ID") {
		t.Fatalf("err %q", v.err)
	}
	v.f.Set(sfDeviceKey, "not-a-key!")
	h.press("enter")
	if !strings.Contains(v.err, "Device key: invalid key") || strings.Contains(v.err, "not-a-key") {
		t.Fatalf("err %q", v.err)
	}
	if strings.Contains(plain(v.View()), "not-a-key") {
		t.Fatal("a pasted key must be masked")
	}
}

func TestSimulateViewShowsFailureAdvice(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 100, 30)
	c.Target, c.Now = target, time.Now
	v := newSimulateView(c, "", "dev-wrong-key")
	h := harness(t, c, v)
	v.f.Set(sfDeviceKey, tutorialDeviceKey) // not this ID's key
	h.press("enter")
	out := plain(v.View())
	if !strings.Contains(out, "✗ registration refused by DPS (HTTP 401)") || !strings.Contains(out, "the ID scope (after") ||
		strings.Contains(out, "connection string") || strings.Contains(out, "+3") {
		t.Fatalf("a refused registration should say why:\n%s", out)
	}
}

func TestTutorialIsOffInReadOnlyMode(t *testing.T) {
	c := testCommon(t, 100, 24)
	c.ReadOnly = true
	h := harness(t, c, newTutorialView(c))
	h.press("enter")
	if !strings.Contains(h.lastFlash(), "read-only") {
		t.Fatalf("flash %q", h.lastFlash())
	}
	if out := plain(h.v.View()); !strings.Contains(out, "Read-only mode") || !strings.Contains(out, "[▸] 1.") {
		t.Fatalf("view:\n%s", out)
	}
}

func TestGroupFormNamesTheBadField(t *testing.T) {
	c := testCommon(t, 100, 24)
	v := newGroupFormView(c, 0)
	for _, tc := range []struct {
		field int
		value string
		want  string
	}{
		{gfID, "bad id", "Group ID: character 4: a space is not allowed"},
		{gfPrimary, "zz", "Primary key: invalid key"},
		{gfAllocation, "random", `Allocation: "random" is not hashed, static or geoLatency`},
		{gfReprovision, "maybe", "Reprovision: give migrate, reset or never"},
	} {
		f := newGroupFormView(c, 0)
		f.f.Set(gfID, "ok-group")
		f.f.Set(tc.field, tc.value)
		if _, err := f.build(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s=%q: %v, want %q", f.f.Labels[tc.field], tc.value, err, tc.want)
		}
	}
	v.f.Set(gfID, "ok-group")
	v.f.Set(gfAllocation, "static")
	v.f.Set(gfHubs, "hub-a.example, hub-b.example")
	if _, err := v.build(); err == nil || !strings.Contains(err.Error(), "exactly one hub") {
		t.Fatalf("static over two hubs: %v", err)
	}
	v.f.Set(gfHubs, "hub-a.example")
	v.f.Set(gfEnabled, "no")
	g, err := v.build()
	if err != nil || g.ProvisioningStatus != dps.ProvisioningDisabled || len(g.Attestation.SymmetricKey.PrimaryKey) != 88 {
		t.Fatalf("%+v %v", g, err)
	}
}

func fmtType(m tea.Msg) string { return fmt.Sprintf("%T", m) }

func TestDataViewsFitSmallAndWideTerminals(t *testing.T) {
	target, _ := startEmulator(t, 0)
	for _, size := range [][2]int{{80, 24}, {250, 60}} {
		m := New(context.Background(), Options{Target: target})
		m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for _, v := range []view{newGroupsView(m.c), newGroupView(m.c, emulator.DemoHashedGroup), newEnrollmentsView(m.c), newGroupFormView(m.c, 0)} {
			drain(t, func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, m.push(v), 50)
			lines := strings.Split(m.View().Content, "\n")
			if len(lines) != size[1] {
				t.Fatalf("%s at %dx%d: %d lines", v.Title(), size[0], size[1], len(lines))
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w > size[0] {
					t.Fatalf("%s at %dx%d: line %d is %d wide", v.Title(), size[0], size[1], i, w)
				}
			}
		}
		out := plain(m.View().Content)
		if !strings.Contains(out, "▸ Group ID") || !strings.Contains(out, "Reprovision    migrate") {
			t.Fatalf("last view not shown:\n%s", out)
		}
	}
}

// A revealed 64-byte key (88 characters) is wider than an 80-column screen:
// it wraps instead of being cut, the table gives up the lines it takes, and
// the view still fits the screen.
func TestGroupViewRevealedKeysWrapAt80Columns(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 80, 24)
	c.Target = target
	h := harness(t, c, newGroupView(c, emulator.DemoHashedGroup))
	h.v.SetSize(80, 24)
	h.press("v")
	v := h.v.(*groupView)
	sk := v.att.SymmetricKey
	out := plain(h.v.View())
	joined := strings.ReplaceAll(out, "\n", "")
	for _, k := range []string{sk.PrimaryKey.Reveal(), sk.SecondaryKey.Reveal()} {
		if len(k) <= 80 || !strings.Contains(joined, k) {
			t.Fatalf("the revealed key %d chars must show whole:\n%s", len(k), out)
		}
	}
	if n := strings.Count(out, "\n") + 1; n > 24 {
		t.Fatalf("the view takes %d lines on a 24-line screen:\n%s", n, out)
	}
	h.press("v")
	if out := plain(h.v.View()); strings.Contains(strings.ReplaceAll(out, "\n", ""), sk.PrimaryKey.Reveal()) {
		t.Fatalf("v masks again:\n%s", out)
	}
}
