package tui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

func command(t *testing.T, m *Model, line string) {
	t.Helper()
	m.Update(press(":"))
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, line)
	pressOn(t, m, "enter")
}

func TestFindOpensTheRecordInOneLookup(t *testing.T) {
	m, _ := newEmulatorApp(t, 120, 40)
	pressOn(t, m, "enter") // a group open: :find replaces what is above home
	command(t, m, "find fleet-sensor-007")
	d := topDescribe(t, m)
	if len(m.stack) != 2 || d.record == nil || d.record.RegistrationID != "fleet-sensor-007" {
		t.Fatalf(":find opens the record above home: %d views, %+v", len(m.stack), d.record)
	}
	wantScreen(t, m, "Describe registration record fleet-sensor-007", `"registrationId": "fleet-sensor-007"`, "Status     assigned")
	if d.loading {
		t.Fatal("the record shows at once: :find read it already")
	}

	// Not found: a clear message and nothing else changes.
	command(t, m, "find no-such-device")
	if m.top() != d || len(m.stack) != 2 {
		t.Fatalf("a miss changes no view: top %s", m.top().Title())
	}
	wantScreen(t, m, "no registration record has the ID no-such-device")

	// Bad input: the rule it breaks.
	command(t, m, "find bad/id")
	if m.top() != d {
		t.Fatal("a bad ID changes no view")
	}
	wantScreen(t, m, ":find bad/id:")
	command(t, m, "find")
	wantScreen(t, m, ":find needs a registration ID")
}

func TestFindDropsAStaleAnswer(t *testing.T) {
	m, _ := newEmulatorApp(t, 120, 40)
	first := m.find("fleet-sensor-001", false, true)
	second := m.find("fleet-sensor-002", false, true)
	m.Update(second())
	m.Update(first()) // arrives late: the operator asked for 002 since
	if d := topDescribe(t, m); d.subject.id != "fleet-sensor-002" || len(m.stack) != 2 {
		t.Fatalf("the later :find wins: %s, %d views", d.Title(), len(m.stack))
	}
}

// `/` with a whole registration ID and enter finds the record even when it
// is not in the loaded rows (here: of another, deleted group); a partial
// filter stays a filter, silently.
func TestSlashWithAFullIDFindsTheRecord(t *testing.T) {
	m, _ := newEmulatorApp(t, 120, 40)
	pressOn(t, m, "enter")
	g := m.top().(*groupView)
	pressOn(t, m, "/")
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "fleet-sens")
	pressOn(t, m, "enter")
	if m.top() != g || m.flash != "" {
		t.Fatalf("a partial filter stays a filter, with no message: %s %q", m.top().Title(), m.flash)
	}
	pressOn(t, m, "esc", "/")
	typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "retired-sensor-003")
	pressOn(t, m, "enter")
	d := topDescribe(t, m)
	if d.subject.id != "retired-sensor-003" || m.stack[len(m.stack)-2] != g {
		t.Fatalf("/ opens the record over the group: %s", d.Title())
	}
	// Its group was deleted: o says why it cannot tell it.
	pressOn(t, m, "o")
	wantScreen(t, m, "no symmetric-key group's key derives its hub device's key")
}

// o on a found record finds its group through the hub device's key.
func TestFoundRecordGoesToItsGroup(t *testing.T) {
	m, _ := newEmulatorApp(t, 120, 40)
	command(t, m, "find fleet-sensor-004")
	pressOn(t, m, "o")
	if g, ok := m.top().(*groupView); !ok || g.groupID != emulator.DemoHashedGroup {
		t.Fatalf("o opens the found record's group: %s\n%s", m.top().Title(), plain(screen(m)))
	}
	if !strings.Contains(m.stack[len(m.stack)-2].Title(), "fleet-sensor-004") {
		t.Fatal("esc goes back to the record")
	}
}
