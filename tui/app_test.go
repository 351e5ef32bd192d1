package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

func newTestApp(t *testing.T, w, h int, readOnly bool) *Model {
	t.Helper()
	m := New(context.Background(), Options{Target: &Target{Name: "emulator (test)", IDScope: "0ne00000A0A"}, ReadOnly: readOnly, Start: "derive"})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

func screen(m *Model) string { return m.View().Content }

func TestCommandLineCompletesAndOpensViews(t *testing.T) {
	m := newTestApp(t, 100, 30, false)
	m.Update(press("esc")) // leave the derive fields
	m.Update(press(":"))
	if !m.cmdMode {
		t.Fatal(": opens the command line")
	}
	for _, r := range "tut" {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	if got := m.cmdline.CurrentSuggestion(); got != "tutorial" {
		t.Fatalf("completion for tut = %q", got)
	}
	m.Update(press("enter"))
	if _, ok := m.top().(*tutorialView); !ok || len(m.stack) != 2 {
		t.Fatalf("`:tut` should push the tutorial, stack %d", len(m.stack))
	}
	if !strings.Contains(plain(screen(m)), "Derive device key › Tutorial") {
		t.Fatalf("breadcrumb missing:\n%s", plain(screen(m)))
	}
	m.Update(press("esc"))
	if _, ok := m.top().(*deriveView); !ok {
		t.Fatal("esc pops back to derive")
	}
	m.Update(press(":"))
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "clean")
	m.Update(press("enter"))
	if !strings.Contains(plain(screen(m)), "Clean up orphaned records") {
		t.Fatalf(":cleanup should open the clean-up:\n%s", plain(screen(m)))
	}
	m.Update(press(":"))
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "bogus")
	_, cmd := m.Update(press("enter"))
	if f, ok := cmd().(flashMsg); !ok || !strings.Contains(f.text, "unknown command") {
		t.Fatalf("unknown command should flash, got %#v", cmd())
	}
	_, cmd = m.Update(press("q"))
	if !m.quitting || cmd == nil {
		t.Fatal("q quits")
	}
}

func TestResultsReachTheirOwnerEvenWhenHidden(t *testing.T) {
	m := newTestApp(t, 100, 30, false)
	derive := m.top().(*deriveView)
	derive.Update(press("ctrl+s")) // key from a group
	typeText(derive.Update, "grp")
	cmd := derive.fetch()
	if cmd != nil {
		t.Fatal("no service: nothing to fetch")
	}
	derive.fetchGen = 2
	m.Update(press("esc"))
	m.Update(press(":"))
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "tutorial")
	m.Update(press("enter"))
	att := dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{PrimaryKey: tutorialGroupKey}}
	// A stale answer (generation 1) is dropped; the current one lands in
	// derive although the tutorial has the focus.
	m.Update(routed{to: derive.id(), msg: attestationMsg{gen: 1, groupID: "grp", att: att}})
	if derive.fetchedFrom != "" {
		t.Fatal("stale result applied")
	}
	m.Update(routed{to: derive.id(), msg: attestationMsg{gen: 2, groupID: "grp", att: att}})
	if derive.fetchedFrom != "grp" || derive.groupKey.Base64() != tutorialGroupKey {
		t.Fatal("result did not reach its owner")
	}
	// A result for a closed view is dropped quietly.
	m.Update(routed{to: 999, msg: attestationMsg{gen: 2}})
}

func TestLayoutFitsSmallAndWideTerminals(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {300, 60}, {40, 12}} {
		for _, ro := range []bool{false, true} {
			m := newTestApp(t, size[0], size[1], ro)
			for _, v := range []string{"derive", "simulate", "fleet", "tutorial", "cleanup"} {
				m.push(m.makeView(v))
				for _, show := range []bool{false, true} {
					m.showHelp = show
					lines := strings.Split(screen(m), "\n")
					if len(lines) != size[1] {
						t.Fatalf("%s at %dx%d: %d lines", v, size[0], size[1], len(lines))
					}
					for i, l := range lines {
						if w := ansi.StringWidth(l); w > size[0] {
							t.Fatalf("%s at %dx%d: line %d is %d wide: %q", v, size[0], size[1], i, w, ansi.Strip(l))
						}
					}
				}
			}
			header := plain(strings.SplitN(screen(m), "\n", 2)[0])
			if ro != strings.Contains(header, "READ-ONLY") {
				t.Fatalf("header at %dx%d readonly=%v: %q", size[0], size[1], ro, header)
			}
		}
	}
}

func TestHelpListsBindingsAndWhatReadOnlyDisables(t *testing.T) {
	m := newTestApp(t, 120, 40, true)
	m.Update(press("esc"))
	m.Update(press("?"))
	out := plain(screen(m))
	for _, want := range []string{"Everywhere", "Disabled (read-only mode): n new, e enable/disable, d delete", ":groups"} {
		if !strings.Contains(out, want) {
			t.Fatalf("help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "d         delete") {
		t.Fatal("read-only help must not offer delete")
	}
	m.Update(press("x"))
	if m.showHelp {
		t.Fatal("any key closes help")
	}
}

func TestBackgroundColourSwitchesStyles(t *testing.T) {
	m := newTestApp(t, 80, 24, false)
	before := *m.c.Styles
	m.Update(tea.BackgroundColorMsg{Color: ansiWhite{}})
	if m.c.Styles.Title.GetForeground() == before.Title.GetForeground() && !m.c.NoColor {
		t.Fatal("a light background should switch to the light palette")
	}
}

type ansiWhite struct{}

func (ansiWhite) RGBA() (r, g, b, a uint32) { return 0xffff, 0xffff, 0xffff, 0xffff }

func TestEscClearsAFilterBeforeClosingTheView(t *testing.T) {
	m := newTestApp(t, 100, 30, false)
	v := newGroupView(m.c, "g")
	m.stack = append(m.stack, v)
	m.resize()
	v.table.Append(makeRecords(20), false)
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "/0001")
	m.Update(press("enter"))
	if v.table.Query() != "0001" {
		t.Fatalf("query %q", v.table.Query())
	}
	m.Update(press("esc"))
	if m.top() != view(v) || v.table.Query() != "" {
		t.Fatal("first esc clears the filter and keeps the view")
	}
	m.Update(press("esc"))
	if m.top() == view(v) {
		t.Fatal("second esc closes the view")
	}
}

// TestScreenGolden pins whole screens (header, body, footer) at 80×24 and
// at a wide size.
func TestScreenGolden(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {200, 30}} {
		for _, name := range []string{"derive", "help", "readonly-help", "tutorial", "records", "long-error"} {
			t.Run(fmt.Sprintf("%s-%dx%d", name, size[0], size[1]), func(t *testing.T) {
				m := newTestApp(t, size[0], size[1], name == "readonly-help")
				m.c.Styles = theme.NewStyles(true, true)
				m.Update(press("esc"))
				switch name {
				case "help", "readonly-help":
					m.Update(press("?"))
				case "tutorial":
					m.push(m.makeView("tutorial"))
				case "records": // the view with the most hints
					v := newGroupView(m.c, "g")
					v.group = &dps.EnrollmentGroup{EnrollmentGroupID: "g", Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey},
						ProvisioningStatus: dps.ProvisioningEnabled, AllocationPolicy: dps.AllocationHashed}
					m.pushForTest(v)
					v.table.Append(makeRecords(3), false)
				case "long-error": // wrapped over the lines the body gives up
					m.Update(flashMsg{text: "updating g: " + strings.Repeat("the service refused the request; ", 6) + "read it again and retry", level: levelError})
				}
				golden.RequireEqual(t, plain(screen(m)))
			})
		}
	}
}

func TestQuitAsksAgainWhileADeletionRuns(t *testing.T) {
	m := newTestApp(t, 100, 30, false)
	m.Update(press("esc"))
	v := newGroupView(m.c, "g")
	v.deleting = &deleteProgress{total: 10}
	m.stack = append(m.stack, v)
	_, cmd := m.Update(press("q"))
	if m.quitting {
		t.Fatal("the first q must not quit while a deletion runs")
	}
	var warned bool
	var look func(tea.Cmd) // the flash, the spinner of the busy view, the job's log line: batches in batches
	look = func(c tea.Cmd) {
		switch msg := c().(type) {
		case tea.BatchMsg:
			for _, c := range msg {
				look(c)
			}
		case flashMsg:
			warned = warned || strings.Contains(msg.text, "q again quits")
		}
	}
	look(cmd)
	if !warned {
		t.Fatal("want a warning")
	}
	m.Update(press("q"))
	if !m.quitting {
		t.Fatal("the second q quits")
	}
}
