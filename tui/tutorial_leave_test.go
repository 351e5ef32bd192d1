package tui

import (
	"context"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
)

// tutorialPastStepOne opens the tutorial on home and runs step 1, which
// creates a group; esc leaves the ID field step 2 focuses.
func tutorialPastStepOne(t *testing.T) (*Model, *tutorialView, *Target) {
	t.Helper()
	target, _ := startEmulator(t, 0)
	m := appOn(t, target, false)
	feed(t, m, m.runCommand(":tutorial"), 20)
	tv, ok := m.top().(*tutorialView)
	if !ok {
		t.Fatalf(":tutorial opened %T", m.top())
	}
	feed(t, m, m.send(press("enter")), 20)
	if len(tv.created) != 1 {
		t.Fatalf("step 1 should have created the group:\n%s", plain(screen(m)))
	}
	m.send(press("esc"))
	return m, tv, target
}

// q and a `:` command part-way through the tutorial ask first, saying that
// leaving keeps (does not delete) what it created; any other key stays.
func TestLeavingTheTutorialByQOrCommandAsksFirst(t *testing.T) {
	m, tv, target := tutorialPastStepOne(t)
	for _, leave := range []func() tea.Cmd{
		func() tea.Cmd { return m.send(press("q")) },
		func() tea.Cmd { m.send(press(":")); typeInto(m, "log"); return m.send(press("enter")) },
		func() tea.Cmd { return m.runCommand(":quit") },
	} {
		cmd := leave()
		if m.quitting || m.top() != tv {
			t.Fatalf("leaving part-way did not ask: quitting %v, top %T", m.quitting, m.top())
		}
		text := plain(screen(m))
		for _, want := range []string{"Leave the tutorial at step 2?", "group " + tv.groupID, "Leaving removes none of it", "the next :tutorial offers to remove it"} {
			if !strings.Contains(text, want) {
				t.Fatalf("the question should say %q:\n%s", want, text)
			}
		}
		feed(t, m, cmd, 20)
		feed(t, m, m.send(press("n")), 20)
		if m.quitting || m.top() != tv || tv.confirm != nil {
			t.Fatalf("n should stay in the tutorial: quitting %v, top %T", m.quitting, m.top())
		}
	}

	m.send(press(":"))
	typeInto(m, "log")
	feed(t, m, m.send(press("enter")), 20)
	feed(t, m, m.send(press("y")), 20)
	if _, ok := m.top().(*logView); !ok {
		t.Fatalf("y should run :log: top %T", m.top())
	}
	if _, err := target.Service.GetEnrollmentGroup(context.Background(), tv.groupID); err != nil {
		t.Fatalf("leaving must keep the tutorial's group: %v", err)
	}

	m, _, _ = tutorialPastStepOne(t)
	feed(t, m, m.send(press("q")), 20)
	feed(t, m, m.send(press("y")), 20)
	if !m.quitting {
		t.Fatal("y to q's question should quit")
	}
}

// Before it has created anything or started a step, q leaves at once.
func TestLeavingAFreshTutorialDoesNotAsk(t *testing.T) {
	target, _ := startEmulator(t, 0)
	m := appOn(t, target, false)
	feed(t, m, m.runCommand(":tutorial"), 20)
	m.send(press("q"))
	if !m.quitting {
		t.Fatalf("q on a fresh tutorial should quit:\n%s", plain(screen(m)))
	}
}

// Keys typed while the tutorial looks for an earlier run's leftovers go to
// nothing: enter would start step 1 under the dialog about to ask.
func TestKeysWhileTheTutorialChecksLeftoversStartNoStep(t *testing.T) {
	m, tv, _ := tutorialPastStepOne(t)
	feed(t, m, m.send(press("q")), 20)
	feed(t, m, m.send(press("y")), 20) // quits, keeping the group: a leftover
	m = appOn(t, tv.c.Target, false)
	check := m.runCommand(":tutorial")
	next := m.top().(*tutorialView)
	if m.send(press("enter")); next.working {
		t.Fatalf("enter while the leftovers are looked for started step 1:\n%s", plain(screen(m)))
	}
	feed(t, m, check, 20)
	if next.confirm == nil || !strings.Contains(next.confirm.Text, tv.groupID) {
		t.Fatalf("the leftovers dialog should ask about %s:\n%s", tv.groupID, plain(screen(m)))
	}
}
