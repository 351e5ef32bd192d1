package tui

// Tests of issue #10 §3, "Keys and screens that mislead": each drives the
// Bubble Tea model (Update, then View) and fails on the console before it.

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
	"github.com/dpsconsole/dpsconsole/tui/components/timeline"
)

// footerLine is the screen's last line, plain.
func footerLine(m *Model) string {
	lines := strings.Split(plain(screen(m)), "\n")
	return lines[len(lines)-1]
}

// footerKeys are the keys of the footer's hints ("enter run • c copy").
func footerKeys(m *Model) []string {
	var keys []string
	for _, item := range strings.Split(footerLine(m), " • ") {
		keys = append(keys, strings.SplitN(strings.TrimSpace(item), " ", 2)[0])
	}
	return keys
}

func (m *Model) pushForTest(v view) {
	m.stack = append(m.stack, v)
	m.resize()
}

func typeInto(m *Model, s string) {
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, s)
}

// TestFieldFootersShowOnlyKeysThatWork: in a text field a printable key
// types itself, so no hint may offer one (c copy, v reveal, : command,
// ? help, q quit); the keys that do work there show instead.
func TestFieldFootersShowOnlyKeysThatWork(t *testing.T) {
	cases := []struct {
		name  string
		setup func(m *Model)
		want  []string
	}{
		{"derive", func(m *Model) { m.top().Init() }, []string{"tab", "ctrl+y", "ctrl+s", "ctrl+k", "esc", "ctrl+c"}},
		{"simulate", func(m *Model) { m.push(m.makeView("simulate")) }, []string{"enter", "tab", "ctrl+t", "ctrl+o", "esc", "ctrl+c"}},
		{"group form", func(m *Model) {
			v := newGroupFormView(m.c, 0)
			m.pushForTest(v)
			v.Init()
		}, []string{"tab", "enter", "ctrl+k", "esc", "ctrl+c"}},
		{"enrollment form", func(m *Model) {
			v := newEnrollmentsView(m.c)
			m.pushForTest(v)
			m.Update(press("n"))
		}, []string{"tab", "enter", "ctrl+k", "esc", "ctrl+c"}},
		{"groups filter", func(m *Model) {
			m.pushForTest(newGroupsView(m.c))
			m.Update(press("/"))
		}, []string{"enter", "esc", "ctrl+c"}},
		{"records filter", func(m *Model) {
			m.pushForTest(newGroupView(m.c, "g"))
			m.Update(press("/"))
		}, []string{"enter", "esc", "ctrl+c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestApp(t, 120, 30, false)
			tc.setup(m)
			if !m.top().Editing() {
				t.Fatal("the setup should leave a text field with the keys")
			}
			keys := footerKeys(m)
			for _, k := range keys {
				if len([]rune(k)) == 1 {
					t.Errorf("footer offers %q, which types itself in the field: %q", k, footerLine(m))
				}
			}
			if strings.Join(keys, " ") != strings.Join(tc.want, " ") {
				t.Errorf("footer keys %q, want %q (%q)", keys, tc.want, footerLine(m))
			}
		})
	}
}

// TestFootersCollapseButKeepHelpAndQuit: hints that do not fit drop from
// the end, never `? help` and `q quit`.
func TestFootersCollapseButKeepHelpAndQuit(t *testing.T) {
	for _, w := range []int{60, 80, 100, 200} {
		m := newTestApp(t, w, 24, false)
		m.Update(press("esc"))
		m.pushForTest(newGroupView(m.c, "g")) // the view with the most hints
		f := footerLine(m)
		if !strings.HasSuffix(f, "? help • q quit") || strings.Contains(f, "…") || ansi.StringWidth(f) > w {
			t.Errorf("at %d columns the footer is %q", w, f)
		}
	}
}

// TestListsMoveWithJAndKWhichRevealsNothing: j/k are vim's down/up in every
// list; the key reveal moved to v.
func TestListsMoveWithJAndKWhichRevealsNothing(t *testing.T) {
	m := newTestApp(t, 120, 30, false)
	m.Update(press("esc"))
	v := newGroupView(m.c, "g")
	m.pushForTest(v)
	v.table.Append(makeRecords(5), false)
	v.att = &dps.AttestationMechanism{Type: dps.AttestationSymmetricKey,
		SymmetricKey: &dps.SymmetricKeyAttestation{PrimaryKey: tutorialGroupKey, SecondaryKey: tutorialGroupKey}}
	v.group = &dps.EnrollmentGroup{EnrollmentGroupID: "g"}
	m.Update(press("j"))
	m.Update(press("j"))
	if v.table.Cursor() != 2 {
		t.Fatalf("j j: cursor %d, want 2", v.table.Cursor())
	}
	m.Update(press("k"))
	if v.table.Cursor() != 1 || strings.Contains(screen(m), tutorialGroupKey) {
		t.Fatalf("k moves up (cursor %d) and reveals nothing", v.table.Cursor())
	}
	m.Update(press("v"))
	if !strings.Contains(plain(screen(m)), tutorialGroupKey) {
		t.Fatal("v reveals the keys")
	}
}

// TestHelpSaysWhereKeysWork: x and s work on the groups list, e in the
// enrollments, and marking is listed with the records, the only list that
// marks.
func TestHelpSaysWhereKeysWork(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	h := harness(t, c, newGroupsView(c))
	for key, want := range map[string]string{"x": "Derive device key", "s": "Simulate device"} {
		cmd := h.v.Update(press(key))
		if cmd == nil {
			t.Fatalf("%s does nothing on the groups list", key)
		}
		o, ok := cmd().(openMsg)
		if !ok || o.v.Title() != want {
			t.Fatalf("%s on the groups list: %#v, want %s", key, o, want)
		}
		if !strings.Contains(plain(o.v.View()), emulator.DemoHashedGroup) {
			t.Fatalf("%s should take the selected group:\n%s", key, plain(o.v.View()))
		}
	}

	ctx := context.Background()
	if _, err := target.Service.CreateOrUpdateEnrollment(ctx, testEnrollment("toggle-me"), nil); err != nil {
		t.Fatal(err)
	}
	e := harness(t, c, newEnrollmentsView(c))
	e.press("e") // asks first: disabling stops the device registering
	if got, err := target.Service.GetEnrollment(ctx, "toggle-me"); err != nil || got.ProvisioningStatus != dps.ProvisioningEnabled ||
		!strings.Contains(plain(e.v.View()), "Disable the individual enrollment toggle-me?") {
		t.Fatalf("e must ask before disabling: %v %v\n%s", got.ProvisioningStatus, err, plain(e.v.View()))
	}
	e.press("y")
	got, err := target.Service.GetEnrollment(ctx, "toggle-me")
	if err != nil || got.ProvisioningStatus != dps.ProvisioningDisabled {
		t.Fatalf("e should disable the enrollment: %v %v (flashes %q)", got.ProvisioningStatus, err, e.flashes)
	}
	att, err := target.Service.GetEnrollmentAttestation(ctx, "toggle-me")
	if err != nil || att.SymmetricKey == nil || att.SymmetricKey.PrimaryKey.Reveal() != tutorialGroupKey {
		t.Fatalf("the toggle must keep the keys: %v", err)
	}

	for _, s := range DefaultKeyMap(false).Sections() {
		for _, b := range s.Bindings {
			if (b.Help().Key == "space" || b.Help().Key == "ctrl+a") && !strings.Contains(s.Title, "records") {
				t.Errorf("help lists %s %s under %q: only a group's records mark", b.Help().Key, b.Help().Desc, s.Title)
			}
		}
	}
}

func testEnrollment(id string) dps.IndividualEnrollment {
	return dps.IndividualEnrollment{RegistrationID: id, ProvisioningStatus: dps.ProvisioningEnabled,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: tutorialGroupKey, SecondaryKey: tutorialGroupKey}}}
}

// TestErrorsWrapInsteadOfBeingCut: a long error keeps its end (where it
// says what to do), in the header and in a view's body.
func TestErrorsWrapInsteadOfBeingCut(t *testing.T) {
	m := newTestApp(t, 80, 24, false)
	m.Update(press("esc"))
	m.Update(press(":"))
	typeInto(m, strings.Repeat("xyzzy", 20))
	_, cmd := m.Update(press("enter"))
	m.Update(cmd())
	out := plain(screen(m))
	lines := strings.Split(out, "\n")
	if len(lines) != 24 {
		t.Fatalf("%d lines", len(lines))
	}
	joined := strings.ReplaceAll(strings.Join(lines[1:7], ""), " ", "")
	if !strings.Contains(joined, strings.Repeat("xyzzy", 20)) || !strings.Contains(joined, ":cleanup:quota:export:log") || strings.Contains(out, "…") {
		t.Fatalf("the whole error should show, wrapped:\n%s", out)
	}
	if !strings.HasSuffix(lines[23], "q quit") {
		t.Fatalf("the footer stays the last line:\n%s", out)
	}

	s := newSimulateView(m.c, "", "")
	m.pushForTest(s)
	s.err = "Registration ID: " + strings.Repeat("much too long and wrong ", 6) + "— use letters, digits and - . _ : only"
	out = plain(screen(m))
	if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(s.err), " ")) {
		t.Fatalf("a view's error should wrap, not be cut:\n%s", out)
	}

	tu := newTutorialView(m.c)
	m.pushForTest(tu)
	tu.failed = "creating the group: " + strings.Repeat("the target refused it ", 5) + "— check the connection string's policy"
	out = strings.Join(strings.Fields(plain(screen(m))), " ")
	if !strings.Contains(out, strings.Join(strings.Fields(tu.failed), " ")+" (enter retries)") {
		t.Fatalf("the tutorial's failure should wrap, not be cut:\n%s", plain(screen(m)))
	}
}

// TestFlashesAreMarkedByWhatTheyReport: ✗ errors, ! warnings, ✓ success.
func TestFlashesAreMarkedByWhatTheyReport(t *testing.T) {
	m := newTestApp(t, 120, 30, false)
	second := func() string { return strings.Split(plain(screen(m)), "\n")[1] }
	feed := func(cmd tea.Cmd) {
		msg := cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			for _, c := range b {
				if c != nil {
					if f, ok := c().(flashMsg); ok {
						m.Update(f)
					}
				}
			}
			return
		}
		m.Update(msg)
	}
	_, cmd := m.Update(press("ctrl+y")) // derive: nothing to copy yet
	feed(cmd)
	if !strings.HasPrefix(second(), "! nothing to copy") {
		t.Errorf("a refusal is a warning: %q", second())
	}
	m.Update(press("esc"))
	m.Update(press(":"))
	typeInto(m, "bogus")
	_, cmd = m.Update(press("enter"))
	feed(cmd)
	if !strings.HasPrefix(second(), "✗ unknown command") {
		t.Errorf("an unknown command is an error: %q", second())
	}
	d := m.top().(*deriveView)
	d.f.Set(fieldGroup, tutorialGroupKey)
	d.f.Set(fieldRegID, "dev-1")
	d.recompute()
	_, cmd = m.Update(press("c"))
	feed(cmd)
	if !strings.HasPrefix(second(), "✓ device key copied") {
		t.Errorf("a copy is a success: %q", second())
	}
}

// TestColonCommandsSwitchViews: a `:` command replaces what is above home
// instead of stacking, so esc always goes home.
func TestColonCommandsSwitchViews(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	for _, name := range []string{"derive", "tutorial", "cleanup", "simulate"} {
		m.Update(press("esc")) // out of a field
		m.Update(press(":"))
		typeInto(m, name)
		m.Update(press("enter"))
	}
	if len(m.stack) != 2 {
		t.Fatalf("stack of %d views after four commands", len(m.stack))
	}
	if crumbs := strings.Split(plain(screen(m)), "\n")[1]; crumbs != "Enrollment groups › Simulate device" {
		t.Fatalf("breadcrumb %q", crumbs)
	}
	m.Update(press("esc"))
	m.Update(press("esc"))
	if _, ok := m.top().(*groupsView); !ok || len(m.stack) != 1 {
		t.Fatal("esc goes home")
	}
}

// TestEnrollmentScreens: the create form's placeholders show; the detail
// masks, reveals and copies keys like the group view, has its own footer,
// and scrolls a JSON taller than the screen.
func TestEnrollmentScreens(t *testing.T) {
	c := testCommon(t, 100, 20)
	v := newEnrollmentsView(c)
	v.SetSize(c.Width, c.Height)
	v.Update(press("n"))
	out := plain(v.View())
	for _, want := range []string{"e.g. sn-007", "empty = generate a 64-byte key"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the create form should show the placeholder %q:\n%s", want, out)
		}
	}

	target, _ := startEmulator(t, 0)
	if _, err := target.Service.CreateOrUpdateEnrollment(context.Background(), testEnrollment("shown"), nil); err != nil {
		t.Fatal(err)
	}
	c = testCommon(t, 100, 12)
	c.Target = target
	h := harness(t, c, newEnrollmentsView(c))
	h.press("enter")
	out = plain(h.v.View())
	if !strings.Contains(out, "Enrollment shown") || strings.Contains(out, tutorialGroupKey) {
		t.Fatalf("the detail opens with the keys masked:\n%s", out)
	}
	var hints []string
	for _, b := range h.v.Hints() {
		hints = append(hints, b.Help().Key)
	}
	if got := " " + strings.Join(hints, " ") + " "; !strings.HasPrefix(got, " v c ") || strings.Contains(got, " n ") {
		t.Fatalf("the detail's footer is its own: %q", got)
	}
	first := strings.Split(out, "\n")[1]
	h.press("j", "j", "j")
	if now := strings.Split(plain(h.v.View()), "\n")[1]; now == first {
		t.Fatalf("j should scroll the JSON:\n%s", plain(h.v.View()))
	}
	if !strings.Contains(plain(h.v.View()), "lines 4–") {
		t.Fatalf("the note says where the scroll is:\n%s", plain(h.v.View()))
	}
	h.press("G", "v", "g")
	if out := plain(h.v.View()); !strings.Contains(strings.Join(strings.Fields(out), ""), tutorialGroupKey) {
		t.Fatalf("v reveals the keys:\n%s", out)
	}
	cmd := h.v.Update(press("c"))
	if cmd == nil || !strings.Contains(strings.ToLower(fmtBatch(cmd)), "clipboard") {
		t.Fatal("c copies the primary key")
	}
}

// fmtBatch names the types of the messages a (batched) Cmd returns.
func fmtBatch(cmd tea.Cmd) string {
	msg := cmd()
	b, ok := msg.(tea.BatchMsg)
	if !ok {
		return fmt.Sprintf("%T", msg)
	}
	var s []string
	for _, c := range b {
		s = append(s, fmt.Sprintf("%T", c()))
	}
	return strings.Join(s, " ")
}

// TestLightTerminalWithoutBackgroundAnswer: COLORFGBG decides the palette
// until the terminal answers the background query.
func TestLightTerminalWithoutBackgroundAnswer(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	for _, tc := range []struct {
		env  string
		dark bool
	}{{"0;15", false}, {"0;default;7", false}, {"15;0", true}, {"", true}, {"junk", true}} {
		t.Setenv("COLORFGBG", tc.env)
		m := New(context.Background(), Options{Target: &Target{Name: "test"}})
		want := theme.NewStyles(tc.dark, false).Muted.GetForeground()
		if m.c.Styles.Muted.GetForeground() != want {
			t.Errorf("COLORFGBG=%q: want the dark=%v palette", tc.env, tc.dark)
		}
	}
}

// TestScreenCosmetics: column titles never run together, counts agree
// with their nouns, times say UTC, an empty hub list says what it means,
// the clean-up's column reads as a plan, not as done, the `:` line has no
// stray …, and the reprovisioning hint shows only when it is true.
func TestScreenCosmetics(t *testing.T) {
	c := testCommon(t, 160, 20)
	gs := newGroupsView(c)
	gs.SetSize(c.Width, c.Height)
	gs.table.Append([]dps.EnrollmentGroup{{EnrollmentGroupID: "all-hubs", AllocationPolicy: dps.AllocationHashed}}, false)
	gr := newGroupView(c, "g")
	gr.SetSize(c.Width, c.Height)
	gr.table.Append(makeRecords(1), false)
	en := newEnrollmentsView(c)
	en.SetSize(c.Width, c.Height)
	for name, tc := range map[string]struct {
		header string
		titles []table.Column
	}{
		"groups":      {strings.Split(plain(gs.View()), "\n")[0], gs.table.Columns()},
		"records":     {strings.Split(plain(gr.table.View()), "\n")[0], gr.table.Columns()},
		"enrollments": {strings.Split(plain(en.View()), "\n")[0], en.table.Columns()},
	} {
		got := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(tc.header), -1)
		var want []string
		for _, col := range tc.titles {
			if col.MinTable <= c.Width { // the wide-terminal columns stay hidden here
				want = append(want, col.Title)
			}
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: column titles run together: %q", name, tc.header)
		}
	}
	if !strings.Contains(plain(gs.View()), "all linked hubs") {
		t.Errorf("an empty HUBS cell should say all linked hubs:\n%s", plain(gs.View()))
	}
	if gr.Status() != "1 record" {
		t.Errorf("status %q, want 1 record", gr.Status())
	}
	gr.group = &dps.EnrollmentGroup{EnrollmentGroupID: "g", CreatedDateTimeUTC: c.Now(), LastUpdatedDateTimeUTC: c.Now()}
	if out := plain(gr.View()); !strings.Contains(out, "Created 2026-11-22 12:00:00 UTC") || !strings.Contains(out, "(UTC)") {
		t.Errorf("times should say UTC:\n%s", out)
	}

	cv := newCleanupView(c)
	cv.plan = &cleanup.Plan{Findings: []cleanup.Finding{{RegistrationID: "r1", Reason: cleanup.ReasonNoEnrollment}}}
	cv.setSelection(cleanup.Selection{})
	if out := plain(cv.View()); strings.Contains(out, "DELETED") || !strings.Contains(out, "TO DELETE") || !strings.Contains(out, "Selected: 1 record,") {
		t.Errorf("the clean-up plan reads as done:\n%s", out)
	}

	m := newTestApp(t, 80, 24, false)
	m.Update(press("esc"))
	m.Update(press(":"))
	m.Update(press("c"))
	if f := footerLine(m); strings.Contains(f, "…") || !strings.HasPrefix(f, ":cleanup") {
		t.Errorf("the : line %q", f)
	}

	s := newSimulateView(c, "g", "dev")
	s.tl.Show(timeline.Run{RegID: "dev", Started: c.Now(), Result: &dps.DeviceRegistrationState{Status: dps.StatusFailed}})
	if out := plain(s.View()); strings.Contains(out, "reprovisioning") {
		t.Errorf("a failed registration does not reprovision:\n%s", out)
	}
	s.tl.Show(timeline.Run{RegID: "dev", Started: c.Now(), Elapsed: time.Second, Result: &dps.DeviceRegistrationState{Status: dps.StatusAssigned, AssignedHub: "hub", DeviceID: "dev"}})
	if out := plain(s.View()); !strings.Contains(out, "the substatus says if DPS moved or reset it") {
		t.Errorf("after an assignment the hint shows:\n%s", out)
	}
}
