package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
)

// appOn opens the console on target at home, its first pages loaded.
func appOn(t *testing.T, target *Target, readOnly bool) *Model {
	t.Helper()
	m := New(context.Background(), Options{Target: target, ReadOnly: readOnly})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	drain(t, m.send, m.Init(), 50)
	return m
}

// send is Update for drain.
func (m *Model) send(msg tea.Msg) tea.Cmd { _, cmd := m.Update(msg); return cmd }

// flashOf runs cmd and returns the flash it (or its batch) sends.
func flashOf(t *testing.T, cmd tea.Cmd) flashMsg {
	t.Helper()
	if cmd == nil {
		t.Fatal("no Cmd, want a flash")
	}
	switch msg := cmd().(type) {
	case flashMsg:
		return msg
	case tea.BatchMsg:
		for _, c := range msg {
			if c == nil {
				continue
			}
			if f, ok := c().(flashMsg); ok {
				return f
			}
		}
	}
	t.Fatal("the Cmd sent no flash")
	return flashMsg{}
}

func TestCommandArgumentsComplete(t *testing.T) {
	target, _ := startEmulator(t, 0)
	ctx := context.Background()
	_, err := target.Service.CreateOrUpdateEnrollment(ctx, dps.IndividualEnrollment{RegistrationID: "sensor-42",
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: dps.Secret(keys.GenerateKey().Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := appOn(t, target, false)
	// Group names come from the loaded home list, before any fetch.
	m.Update(press(":"))
	typeInto(m, "group my")
	if got := m.cmdline.CurrentSuggestion(); got != "group "+emulator.TutorialGroupID {
		t.Fatalf("completion of %q = %q", "group my", got)
	}
	// Enrollment IDs come from the fetch off the event loop.
	m.known.fetching = false
	m.Update(m.fetchKnownNames()())
	m.cmdline.SetValue("")
	typeInto(m, "enr")
	if got := m.cmdline.CurrentSuggestion(); got != "enrollments" {
		t.Fatalf("completion of enr = %q", got)
	}
	if !strings.Contains(plain(screen(m)), "tab: [enrollments]  enrollment") {
		t.Fatalf("several completions are listed above the line:\n%s", plain(screen(m)))
	}
	typeInto(m, "ollment s")
	m.Update(press("tab"))
	if got := m.cmdline.Value(); got != "enrollment sensor-42" {
		t.Fatalf("tab completed to %q", got)
	}
	drain(t, m.send, m.send(press("enter")), 20)
	ev, ok := m.top().(*enrollmentsView)
	if !ok || ev.shown == nil || ev.shown.RegistrationID != "sensor-42" {
		t.Fatalf(":enrollment sensor-42 should show it:\n%s", plain(screen(m)))
	}

	m.Update(press("esc"))
	m.Update(press("esc"))
	m.Update(press(":"))
	typeInto(m, "gr "+emulator.DemoHashedGroup)
	drain(t, m.send, m.send(press("enter")), 20)
	if g, ok := m.top().(*groupView); !ok || g.groupID != emulator.DemoHashedGroup || len(m.stack) != 2 {
		t.Fatalf(":gr NAME opens the group above home:\n%s", plain(screen(m)))
	}
}

func TestCommandArgumentErrorsAreClear(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}, Start: "derive"})
	m.known = knownNames{fetched: true, groups: []string{"a"}, groupsDone: true}
	for line, want := range map[string]string{
		":group nosuch":   `there is no enrollment group "nosuch"`,
		":group":          ":group needs an enrollment group's name (:group NAME) (tab completes it)",
		":groups extra":   `:groups takes no argument (got "extra")`,
		":enrollment":     ":enrollment needs an individual enrollment's registration ID (:enrollment ID)",
		":fi":             ":find needs a registration ID, e.g. :find sn-007-888 (:find ID)",
		":frobnicate":     `unknown command "frobnicate"; try :groups :group NAME`,
		":derive now foo": `:derive takes no argument (got "now foo")`,
	} {
		if f := flashOf(t, m.runCommand(line)); !strings.Contains(f.text, want) || f.level < levelWarning {
			t.Errorf("%s flashed %q (level %d), want %q", line, f.text, f.level, want)
		}
	}
}

func TestCommandHistoryRecallsAndPersists(t *testing.T) {
	dir := t.TempDir()
	target := &Target{Name: "test", StateDir: dir}
	m := New(context.Background(), Options{Target: target, Start: "derive"})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	for _, line := range []string{"derive", "cleanup"} {
		m.Update(press("esc"))
		m.Update(press(":"))
		typeInto(m, line)
		drain(t, m.send, m.send(press("enter")), 5)
	}
	m.Update(press(":"))
	typeInto(m, "de")
	for _, step := range []struct{ key, want string }{{"up", "cleanup"}, {"up", "derive"}, {"up", "derive"}, {"down", "cleanup"}, {"down", "de"}} {
		m.Update(press(step.key))
		if got := m.cmdline.Value(); got != step.want {
			t.Fatalf("%s: line %q, want %q", step.key, got, step.want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, historyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("history file: %v %v", fi, err)
	}
	next := New(context.Background(), Options{Target: target, Start: "derive"})
	if strings.Join(next.history, ",") != "derive,cleanup" {
		t.Fatalf("the next session's history: %q", next.history)
	}
}

func TestPaletteFuzzyMatchesAndRuns(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m.Update(press("ctrl+p"))
	if m.palette == nil {
		t.Fatal("ctrl+p opens the palette")
	}
	typeInto(m, "cln")
	p := m.palette
	if first := p.entries[p.shown[0]]; first.label != ":cleanup" {
		t.Fatalf("cln ranks %q first", first.label)
	}
	out := plain(screen(m))
	if !strings.Contains(out, "▸ :cleanup") || !strings.Contains(out, "find and delete orphaned") {
		t.Fatalf("the palette shows the match with its help:\n%s", out)
	}
	m.Update(press("enter"))
	if _, ok := m.top().(*cleanupView); !ok || m.palette != nil {
		t.Fatal("enter on :cleanup opens the clean-up")
	}
	// An action of the view runs through its key: home's filter.
	m.Update(press("esc"))
	m.Update(press("ctrl+p"))
	typeInto(m, "filter")
	m.Update(press("enter"))
	if g, ok := m.top().(*groupsView); !ok || !g.table.Filtering() {
		t.Fatal("the palette's filter action opens home's filter")
	}
	// A list's table keys are there too.
	m.Update(press("esc"))
	m.Update(press("ctrl+p"))
	typeInto(m, "flip the")
	if e := m.palette.entries[m.palette.shown[0]]; e.binding != m.c.Keys.SortReverse {
		t.Fatalf("flip the ranks %q first", e.label)
	}
	m.Update(press("esc"))
	// A command that needs an argument opens the `:` line with its name.
	m.Update(press("esc"))
	m.Update(press("ctrl+p"))
	typeInto(m, "group NAME")
	m.Update(press("enter"))
	if !m.cmdMode || m.cmdline.Value() != "group " {
		t.Fatalf("the palette's :group NAME opens the line with %q", m.cmdline.Value())
	}
}

func TestPaletteUnderReadOnlyOffersNoWrites(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}, ReadOnly: true})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m.Update(press("ctrl+p"))
	labels := map[string]bool{}
	for _, e := range m.palette.entries {
		labels[e.label] = true
		if e.binding != nil && e.binding.Dangerous {
			t.Errorf("read-only palette offers %s %s", e.label, e.help)
		}
	}
	for _, off := range []string{":simulate", ":tutorial", "d", "n", "e", "s"} {
		if labels[off] {
			t.Errorf("read-only palette offers %s", off)
		}
	}
	if !labels["x"] || !labels[":derive"] || !labels["/"] {
		t.Fatalf("read-only palette lacks harmless entries: %v", labels)
	}
}

func TestFuzzyScore(t *testing.T) {
	if fuzzyScore(":group NAME open a group", "grp") < 0 || fuzzyScore(":derive", "xyz") >= 0 {
		t.Fatal("subsequence match")
	}
	if fuzzyScore(":group NAME", "gro") <= fuzzyScore("keep a big rogue", "gro") {
		t.Fatal("letters in a row at a word start rank first")
	}
}

// Every binding's key name is a key press that matches it, so the palette
// runs each action as its key would.
func TestKeyPressOfEveryBinding(t *testing.T) {
	k := DefaultKeyMap(false)
	for _, s := range k.Sections() {
		for _, b := range s.Bindings {
			if name := b.Keys()[0]; !b.Matches(keyPress(name)) {
				t.Errorf("keyPress(%q) = %q does not match %s", name, keyPress(name).String(), b.Help().Desc)
			}
		}
	}
}

func TestStatusLineKeepsTheLastProblem(t *testing.T) {
	m := newTestApp(t, 100, 30, false)
	m.c.Now = testCommon(t, 1, 1).Now // 12:00:00 UTC
	m.Update(press("esc"))
	m.Update(flashMsg{text: "listing enrollment groups: 503 Service Unavailable: the DPS is busy, try again in a minute", level: levelError})
	m.Update(flashMsg{text: "group g is now enabled", level: levelOK})
	m.Update(flashExpired{tag: m.flashTag})
	lines := strings.Split(plain(screen(m)), "\n")
	if len(lines) != 30 || !strings.Contains(lines[28], "✗ 12:00:00") || !strings.Contains(lines[28], "503 Service Unavailable") ||
		!strings.Contains(lines[28], "! shows it in full") {
		t.Fatalf("the status line (above the footer) keeps the error after an OK flash:\n%s", strings.Join(lines, "\n"))
	}
	m.Update(press("!"))
	if out := plain(screen(m)); !strings.Contains(out, "Last error, at 12:00:00 UTC") || !strings.Contains(out, "try again in a minute") {
		t.Fatalf("! shows the error in full:\n%s", out)
	}
	m.Update(press("x"))
	if m.status.text != "" || m.statusHeight() != 0 || strings.Contains(plain(screen(m)), "503") {
		t.Fatal("x clears the status line")
	}
	if f := flashOf(t, m.send(press("!"))); !strings.Contains(f.text, "no error or warning so far") {
		t.Fatalf("! with nothing kept: %q", f.text)
	}
}

// jobView is a view whose job the test starts and ends.
type jobView struct {
	*logView
	job string
}

func (v *jobView) RunningJob() string { return v.job }

func TestLogShowsFailuresAndJobs(t *testing.T) {
	m := newTestApp(t, 100, 30, false)
	m.Update(press("esc"))
	jv := &jobView{logView: newLogView(m.c, m.events)}
	m.push(jv)
	jv.job = "a deletion of registration records"
	m.Update(struct{}{}) // the root sees the job on its next message
	m.Update(flashMsg{text: "deleting r1: 500 Internal Server Error", level: levelError})
	jv.job = ""
	m.Update(struct{}{})
	m.Update(flashMsg{text: "deleted 3 records", level: levelOK})
	m.Update(press(":"))
	typeInto(m, "log")
	m.Update(press("enter"))
	out := plain(screen(m))
	want := []string{"• started: a deletion of registration records", "✗ deleting r1: 500 Internal Server Error",
		"• finished: a deletion of registration records", "✓ deleted 3 records", "4 events"}
	body := out[strings.Index(out, "oldest first"):]
	last := -1
	for _, w := range want[:4] {
		i := strings.Index(body, w)
		if i < last {
			t.Fatalf("%q missing or out of order:\n%s", w, out)
		}
		last = i
	}
	if !strings.Contains(out, want[4]) {
		t.Fatalf(":log:\n%s", out)
	}
}

func TestEventLogRingKeepsTheLatest(t *testing.T) {
	l := newEventLog(3)
	for i := range 5 {
		l.add(event{at: time.Unix(int64(i), 0), text: string(rune('a' + i))})
	}
	if l.Len() != 3 || l.dropped() != 2 || l.at(0).text != "c" || l.at(2).text != "e" {
		t.Fatalf("ring: len %d dropped %d first %q last %q", l.Len(), l.dropped(), l.at(0).text, l.at(2).text)
	}
}

func TestMouseWheelScrollsTheList(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	g := m.top().(*groupsView)
	var page []dps.EnrollmentGroup
	for i := range 50 {
		page = append(page, dps.EnrollmentGroup{EnrollmentGroupID: "g" + string(rune('a'+i/26)) + string(rune('a'+i%26))})
	}
	g.table.Append(page, false)
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	if got := g.table.Cursor(); got != 2*wheelLines {
		t.Fatalf("two notches down: cursor %d", got)
	}
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelUp})
	if got := g.table.Cursor(); got != wheelLines {
		t.Fatalf("one notch up: cursor %d", got)
	}
	if v := m.View(); v.MouseMode != tea.MouseModeCellMotion {
		t.Fatal("the console asks for mouse cell motion")
	}
}

// Every table of the console colours its status column.
func TestEveryTableColoursItsStatus(t *testing.T) {
	c := testCommon(t, 120, 30)
	tables := map[string][]table.Column{
		"groups":      newGroupsView(c).table.Columns(),
		"enrollments": newEnrollmentsView(c).table.Columns(),
		"records":     recordColumns,
	}
	for name, cols := range tables {
		n := 0
		for _, col := range cols {
			if col.Title == "STATUS" || col.Title == "REGISTRATION" {
				if !col.Status {
					t.Errorf("%s: column %s is not coloured", name, col.Title)
				}
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s has no status column", name)
		}
	}
}

// On a wide terminal a failed record shows its error and created time in
// columns of their own; the IDs stop growing.
func TestWideRecordTableShowsTheError(t *testing.T) {
	c := testCommon(t, 260, 12)
	tb := newRecordTable(c, 1)
	tb.SetSize(260, 12)
	created := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	tb.Append(toRecords([]dps.DeviceRegistrationState{{RegistrationID: "dev-1", Status: dps.StatusFailed, ErrorCode: 401002,
		ErrorMessage: "The device is unauthorized", CreatedDateTimeUTC: created}}), false)
	out := plain(tb.View())
	for _, want := range []string{"CREATED (UTC)", "ERROR", "2026-11-20 08:00:00", "401002 The device is unauthorized"} {
		if !strings.Contains(out, want) {
			t.Fatalf("wide record table lacks %q:\n%s", want, out)
		}
	}
	if i := strings.Index(out, "DEVICE ID"); i > 2+64+1 {
		t.Fatalf("the ID column grew past its cap (DEVICE ID at %d):\n%s", i, out)
	}
}

// A click in the group view selects the record under it: the root counts
// Y from the body, the table from the settings above it.
func TestClickSelectsARecordInTheGroupView(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	g := newGroupView(m.c, "g")
	m.push(g)
	var states []dps.DeviceRegistrationState
	for i := range 40 {
		states = append(states, dps.DeviceRegistrationState{RegistrationID: fmt.Sprintf("dev-%02d", i), Status: dps.StatusAssigned})
	}
	g.table.Append(toRecords(states), false)
	lines := strings.Split(plain(screen(m)), "\n")
	y := -1
	for i, l := range lines {
		if strings.Contains(l, "dev-07") {
			y = i
		}
	}
	if y < 0 {
		t.Fatalf("dev-07 is not on screen:\n%s", strings.Join(lines, "\n"))
	}
	m.Update(tea.MouseClickMsg{X: 10, Y: y, Button: tea.MouseLeft})
	if r, _ := g.table.Selected(); r.id != "dev-07" {
		t.Fatalf("click on dev-07's line selected %q", r.id)
	}
}

// o sorts the group's records through the console's keys.
func TestSortKeySortsTheRecords(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	g := newGroupView(m.c, "g")
	m.push(g)
	g.table.Append(toRecords([]dps.DeviceRegistrationState{{RegistrationID: "b"}, {RegistrationID: "c"}, {RegistrationID: "a"}}), false)
	drain(t, m.send, m.send(press("O")), 5)
	if first := g.table.At(0).id; first != "c" || !strings.Contains(plain(screen(m)), "REGISTRATION ID ↓") ||
		!strings.Contains(plain(screen(m)), "sorted by REGISTRATION ID ↓: 3 loaded rows") {
		t.Fatalf("O sorts by ID descending (first %q):\n%s", first, plain(screen(m)))
	}
}

// `:` then tab on an empty line offers every command: the first fills the
// line, the line above lists them all, tab steps on, typing ends it.
func TestTabOnAnEmptyLineOffersEveryCommand(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}, Start: "derive"})
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 30})
	m.Update(press(":"))
	m.Update(press("tab"))
	all := commandsFor(false)
	if got := m.cmdline.Value(); got != all[0] {
		t.Fatalf("tab on an empty line filled %q, want %q", got, all[0])
	}
	list := plain(screen(m))
	if !strings.Contains(list, "tab: ["+all[0]+"]") {
		t.Fatalf("the line above should list every command:\n%s", list)
	}
	for _, name := range all[1:5] {
		if !strings.Contains(list, "  "+name+"  ") {
			t.Errorf("%s is not offered:\n%s", name, list)
		}
	}
	m.Update(press("tab"))
	m.Update(press("tab"))
	if got := m.cmdline.Value(); got != all[2] {
		t.Fatalf("two more tabs = %q, want %q", got, all[2])
	}
	m.Update(press("shift+tab"))
	if got := m.cmdline.Value(); got != all[1] {
		t.Fatalf("shift+tab = %q, want %q", got, all[1])
	}
	typeInto(m, " x")
	if got := m.cmdline.Value(); got != all[1]+" x" {
		t.Fatalf("typing after the choice = %q, want %q", got, all[1]+" x")
	}
	if strings.Contains(plain(screen(m)), "tab: [") {
		t.Fatalf("typing ends the list of every command:\n%s", plain(screen(m)))
	}

	// Under --readonly the list holds only what is offered there.
	ro := New(context.Background(), Options{Target: &Target{Name: "test"}, ReadOnly: true, Start: "derive"})
	ro.Update(tea.WindowSizeMsg{Width: 200, Height: 30})
	ro.Update(press(":"))
	ro.Update(press("tab"))
	if got := plain(screen(ro)); strings.Contains(got, "simulate") || !strings.Contains(got, "tab: [groups]") {
		t.Fatalf("read-only tab offers the read-only commands:\n%s", got)
	}
}

// A prefix of two different commands runs neither and names both; only
// the forms of one word (group, groups) are told apart by the argument.
func TestAmbiguousPrefixNamesTheCommandsAndRunsNone(t *testing.T) {
	for line, want := range map[string]string{
		":f":       ":f could be :find or :fleet",
		":f sn-1":  ":f could be :find or :fleet",
		":t":       ":t could be :tutorial or :targets",
		":e":       ":e could be :enrollments, :enrollment or :export",
		":q":       ":q could be :quota or :quit",
		":fi":      ":find needs a registration ID",
		":enr x":   "enrollment x",
		":gr nope": `there is no enrollment group "nope"`,
	} {
		m := New(context.Background(), Options{Target: &Target{Name: "test"}, Start: "derive"})
		m.known = knownNames{fetched: true, groups: []string{"a"}, groupsDone: true}
		cmd := m.runCommand(line)
		if _, still := m.top().(*deriveView); !still || len(m.stack) != 1 || m.quitting {
			t.Errorf("%s ran a command: top %T, stack %d", line, m.top(), len(m.stack))
			continue
		}
		if f := flashOf(t, cmd); !strings.Contains(f.text, want) || f.level < levelWarning {
			t.Errorf("%s flashed %q (level %d), want %q", line, f.text, f.level, want)
		}
	}
}
