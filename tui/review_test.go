package tui

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// TestGroupsViewOneDeletionAtATime: while a group's records are being
// deleted (before its group delete), keys cannot start a second deletion,
// which would have swapped the group deleted at the end.
func TestGroupsViewOneDeletionAtATime(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	h := harness(t, c, newGroupsView(c))
	v := h.v.(*groupsView)
	g, _ := v.table.Selected() // the demo's first group has records
	h.press("d")
	if v.confirm == nil || !strings.Contains(v.confirm.Text, "It still has") {
		t.Fatalf("no records-first confirmation: %+v", v.confirm)
	}
	run := h.update(press("r")) // records first; not drained yet
	if v.deleting == nil || v.RunningJob() == "" {
		t.Fatal("the deletion is not marked running as soon as it is confirmed")
	}
	v.table.MoveBy(1)
	if cmd := h.update(press("d")); cmd != nil || v.working != "" {
		t.Fatal("d started another deletion while one runs")
	}
	h.run(run)
	if v.deleting != nil || !strings.Contains(strings.Join(h.flashes, "|"), "deleted enrollment group "+g.EnrollmentGroupID) {
		t.Fatalf("the deletion did not finish with its own group: %q", h.flashes)
	}
}

// countingHandler counts log records; the console's log is a file, so
// Update must leave writing them to a Cmd.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h countingHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h countingHandler) WithGroup(string) slog.Handler             { return h }

// runAll runs a Cmd's batch members concurrently (a Tick would block).
func runAll(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		if b, ok := cmd().(tea.BatchMsg); ok {
			for _, c := range b {
				runAll(c)
			}
		}
	}()
}

func waitCount(t *testing.T, n *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for n.Load() != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n.Load() != want {
		t.Fatalf("%d log records, want %d", n.Load(), want)
	}
}

func TestUpdateLeavesLogWritesToCmds(t *testing.T) {
	var n atomic.Int64
	logger := slog.New(countingHandler{&n})
	m := New(context.Background(), Options{Target: &Target{Name: "test"}, Logger: logger, Start: "derive"})
	_, cmd := m.Update(flashMsg{text: "boom", level: levelError})
	if n.Load() != 0 {
		t.Fatal("Update wrote the log itself")
	}
	runAll(cmd)
	waitCount(t, &n, 1)

	n.Store(0)
	c := testCommon(t, 100, 20)
	c.Logger = logger
	v := newGroupView(c, "g")
	v.SetSize(c.Width, c.Height)
	cmd = v.Update(recordsPageMsg{gen: v.gen, records: makeRecords(3)})
	if n.Load() != 0 {
		t.Fatal("the group view's Update wrote the log itself")
	}
	runAll(cmd)
	waitCount(t, &n, 1)
}

// TestCreateFormsMaskPastedKeys: a key pasted into the group form or the
// enrollment form shows masked until ctrl+k (or k outside the fields).
func TestCreateFormsMaskPastedKeys(t *testing.T) {
	key := keys.GenerateKey().Base64()
	c := testCommon(t, 140, 30)
	g := newGroupFormView(c, 0)
	g.SetSize(c.Width, c.Height)
	g.Init()
	g.Update(press("tab")) // the primary key field
	g.Update(tea.PasteMsg{Content: key})
	if g.f.Value(gfPrimary) != key {
		t.Fatalf("paste did not land in the primary key field")
	}
	if strings.Contains(g.View(), key[:12]) {
		t.Fatal("the group form shows a pasted group key unmasked")
	}
	g.Update(press("k")) // typed into the field, not a reveal
	if g.f.Value(gfPrimary) != key+"k" || strings.Contains(g.View(), key[:12]) {
		t.Fatal("k typed into the key field revealed it or was lost")
	}
	g.f.Set(gfPrimary, key)
	g.Update(press("ctrl+k"))
	if !strings.Contains(g.View(), key[:12]) {
		t.Fatal("ctrl+k does not reveal the key")
	}
	g.Update(press("ctrl+k"))
	if strings.Contains(g.View(), key[:12]) {
		t.Fatal("ctrl+k again does not mask the key")
	}

	e := newEnrollmentsView(c)
	e.SetSize(c.Width, c.Height)
	e.Update(press("n"))
	e.Update(press("tab"))
	e.Update(tea.PasteMsg{Content: key})
	if e.create.Value(1) != key || strings.Contains(e.View(), key[:12]) {
		t.Fatal("the enrollment form shows a pasted key unmasked")
	}
}

// TestLateResultsOfAnOlderKeyAreDropped: a result for an earlier enter or d
// that arrives after a later one does not replace it.
func TestLateResultsOfAnOlderKeyAreDropped(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	for _, id := range []string{"late-a", "late-b"} {
		en := dps.IndividualEnrollment{RegistrationID: id, Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey,
			SymmetricKey: &dps.SymmetricKeyAttestation{PrimaryKey: dps.Secret(keys.GenerateKey().Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}}
		if _, err := target.Service.CreateOrUpdateEnrollment(context.Background(), en, nil); err != nil {
			t.Fatal(err)
		}
	}

	e := harness(t, c, newEnrollmentsView(c)).v.(*enrollmentsView)
	if e.table.Len() < 2 {
		t.Fatalf("the demo has %d enrollments, want 2+", e.table.Len())
	}
	first := e.Update(press("enter"))
	e.table.MoveBy(1)
	second := e.Update(press("enter"))
	want, _ := e.table.Selected()
	e.Update(second().(routed).msg)
	e.Update(first().(routed).msg)
	if e.shown == nil || e.shown.RegistrationID != want.RegistrationID {
		t.Fatalf("detail shows %+v, want the later enter's %s", e.shown, want.RegistrationID)
	}

	// While d counts, the keys wait for its dialog; esc gives it up, so a
	// second d is for another group.
	g := harness(t, c, newGroupsView(c)).v.(*groupsView)
	first = g.Update(press("d"))
	g.Update(press("esc"))
	g.table.MoveBy(1)
	second = g.Update(press("d"))
	wantG, _ := g.table.Selected()
	g.Update(second().(routed).msg)
	g.confirm = nil // answered
	g.Update(first().(routed).msg)
	if g.confirm != nil {
		t.Fatalf("a late count reopened a delete dialog: %q (the later d was for %s)", g.confirm.Text, wantG.EnrollmentGroupID)
	}
}

// TestRunningDeletionsStayOnTheStack: neither esc nor :groups drops a view
// whose deletion runs (its end would be lost and q would not warn).
func TestRunningDeletionsStayOnTheStack(t *testing.T) {
	m := newTestApp(t, 100, 30, false)
	m.Update(press("esc"))
	v := newGroupView(m.c, "g")
	v.deleting = &deleteProgress{total: 10}
	m.stack = append(m.stack, v)
	m.Update(press("esc"))
	if m.top() != v {
		t.Fatal("esc closed the group view while its deletion runs")
	}
	m.Update(press(":"))
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "groups")
	if _, cmd := m.Update(press("enter")); cmd == nil {
		t.Fatal(":groups gave no word")
	}
	if len(m.stack) != 2 || m.top() != v {
		t.Fatalf(":groups dropped the running deletion: %d views", len(m.stack))
	}
	v.deleting = nil
	m.Update(press("esc"))
	if m.top() == v {
		t.Fatal("esc does not close the group view once the deletion ended")
	}
}

// TestEscLeavesEveryView: from every view, at most two esc presses (the
// first may leave a field) go back to the view below.
func TestEscLeavesEveryView(t *testing.T) {
	target, _ := startEmulator(t, 0)
	m := New(context.Background(), Options{Target: target})
	update := func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }
	update(tea.WindowSizeMsg{Width: 120, Height: 40})
	drain(t, update, m.Init(), 50)
	home := m.top()
	for _, name := range []string{"enrollments", "derive", "simulate", "tutorial", "cleanup", "group", "new group"} {
		var v view
		switch name {
		case "group":
			v = newGroupView(m.c, emulator.DemoHashedGroup)
		case "new group":
			v = newGroupFormView(m.c, home.id())
		default:
			v = m.makeView(name)
		}
		drain(t, update, m.push(v), 50)
		for range 2 {
			if m.top() == v {
				update(press("esc"))
			}
		}
		if m.top() != home {
			t.Fatalf("two esc presses did not leave %s (top is %s)", name, m.top().Title())
		}
	}
}

// TestDeriveDropsAFetchForAnOldSourceOrGroup: the group's keys arriving after
// the key source or the group ID changed are not applied.
func TestDeriveDropsAFetchForAnOldSourceOrGroup(t *testing.T) {
	c := testCommon(t, 120, 30)
	att := dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
		PrimaryKey: dps.Secret(keys.GenerateKey().Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}
	for _, change := range []string{"ctrl+s", "x"} {
		v := newDeriveView(c, "group-a", "dev-1")
		v.f.FocusOn(fieldGroup)
		v.fetchGen, v.fetching = 7, true // a fetch of group-a in flight
		v.Update(press(change))
		v.Update(attestationMsg{gen: 7, groupID: "group-a", att: att})
		if v.fetching || v.fetchedFrom != "" || !v.groupKey.IsZero() {
			t.Fatalf("after %s: fetching=%v, key from %q applied", change, v.fetching, v.fetchedFrom)
		}
	}
}

// TestGroupFormCreatesOnceAndClosesItself: a second enter while saving sends
// nothing, and the form's "created" closes the form even when the operator
// opened another view meanwhile.
func TestGroupFormCreatesOnceAndClosesItself(t *testing.T) {
	m := newTestApp(t, 120, 30, false)
	m.Update(press("esc"))
	f := newGroupFormView(m.c, 0)
	m.push(f)
	f.f.Set(gfID, "once")
	f.f.FocusOn(-1)
	f.saving = true
	if cmd := f.Update(press("enter")); cmd != nil {
		t.Fatal("enter while saving submits again")
	}
	other := newDeriveView(m.c, "", "")
	m.push(other)
	cmd := f.Update(groupCreatedMsg{id: "once"})
	for _, c := range cmd().(tea.BatchMsg) {
		if msg, ok := c().(backMsg); ok {
			m.Update(msg)
		}
	}
	if m.top() != other || len(m.stack) != 2 {
		t.Fatalf("the form's close hit the wrong view: top %s, %d views", m.top().Title(), len(m.stack))
	}
}

func TestEnrollmentFormCreatesOnce(t *testing.T) {
	c := testCommon(t, 120, 30)
	v := newEnrollmentsView(c)
	v.SetSize(c.Width, c.Height)
	v.Update(press("n"))
	v.create.Set(0, "once")
	v.create.FocusOn(-1)
	v.working = true // the first enter's PUT is in flight
	if cmd := v.Update(press("enter")); cmd != nil {
		t.Fatal("enter while creating submits again")
	}
}

// TestHelpScrolledThenResizedTaller: a help scrolled to its end on a short
// terminal still renders after the terminal grows.
func TestHelpScrolledThenResizedTaller(t *testing.T) {
	m := newTestApp(t, 40, 10, false)
	m.Update(press("esc"))
	m.Update(press("?"))
	for range 200 {
		m.Update(press("down"))
	}
	for _, h := range []int{14, 20, 30, 200} {
		m.Update(tea.WindowSizeMsg{Width: 40, Height: h})
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("help at 40x%d after scrolling: panic: %v", h, r)
				}
			}()
			m.View()
		}()
	}
}

// TestKeyMashNeverPanics presses random keys and resizes on every view
// against the emulator, results fed back as a Program would, and renders
// after each step.
func TestKeyMashNeverPanics(t *testing.T) {
	target, _ := startEmulator(t, 0)
	m := New(context.Background(), Options{Target: target})
	msgs := make(chan tea.Msg, 1024)
	var run func(tea.Cmd)
	run = func(cmd tea.Cmd) {
		if cmd == nil {
			return
		}
		go func() {
			switch msg := cmd().(type) {
			case tea.BatchMsg:
				for _, c := range msg {
					run(c)
				}
			case nil:
			default:
				select {
				case msgs <- msg:
				default:
				}
			}
		}()
	}
	step := func(msg tea.Msg) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("after %#v on %s: panic: %v", msg, m.top().Title(), r)
			}
		}()
		_, cmd := m.Update(msg)
		run(cmd)
		m.View()
	}
	step(tea.WindowSizeMsg{Width: 100, Height: 30})
	run(m.Init())
	ks := []string{"up", "down", "pgdown", "enter", "esc", "space", "tab", "shift+tab", "ctrl+a", "ctrl+s", "ctrl+k", "ctrl+t",
		"k", "c", "d", "n", "e", "r", "/", "a", "1", "G", "g", "p", "h", "s", "?", "y", "backspace"}
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(4 * time.Second)
	for _, name := range slices.DeleteFunc(commandsFor(false), func(n string) bool { return n == "quit" }) {
		step(press(":"))
		typeText(func(msg tea.Msg) tea.Cmd { step(msg); return nil }, name)
		step(press("enter"))
		for i := 0; i < 150 && time.Now().Before(deadline); i++ {
			if rng.IntN(10) == 0 {
				step(tea.WindowSizeMsg{Width: rng.IntN(130), Height: rng.IntN(40)})
			} else {
				step(press(ks[rng.IntN(len(ks))]))
			}
			for more := true; more; {
				select {
				case msg := <-msgs:
					step(msg)
				case <-time.After(2 * time.Millisecond):
					more = false
				}
			}
		}
		m.cmdMode, m.showHelp = false, false
		deadline = time.Now().Add(4 * time.Second)
	}
}
