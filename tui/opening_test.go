package tui

import (
	"strings"
	"testing"
	"time"
)

// keysBeforeOpen presses key on home, then more keys before the Cmd's
// result arrives, as a fast typist's keys do, then delivers the result.
func keysBeforeOpen(t *testing.T, m *Model, key string, early ...string) {
	t.Helper()
	cmd := m.send(press(key))
	for _, k := range early {
		drain(t, m.send, m.send(press(k)), 20)
	}
	feed(t, m, cmd, 20)
}

// Keys typed while a describe, an edit form or a group opens go to
// nothing: never to the list beneath, which they would move or act on.
func TestKeysBeforeAViewOpensDoNotReachTheListBeneath(t *testing.T) {
	target, _ := startEmulator(t, 0)
	for _, key := range []string{"i", "E", "enter"} {
		m := appOn(t, target, false)
		home := m.top().(*groupsView)
		if home.table.Len() < 2 {
			t.Fatalf("the demo DPS should list two groups or more, has %d", home.table.Len())
		}
		keysBeforeOpen(t, m, key, "j", "j", "t")
		if c := home.table.Cursor(); c != 0 {
			t.Errorf("%s: keys typed while it opened moved the list beneath to row %d", key, c)
		}
		if home.confirm != nil {
			t.Errorf("%s: t typed while it opened asked to toggle the group beneath: %q", key, home.confirm.Text)
		}
		if len(m.stack) != 2 {
			t.Errorf("%s: the view should be open above home; stack %d", key, len(m.stack))
		}
		// Once it is open, keys work again.
		m.send(press("esc"))
		m.send(press("esc"))
		m.send(press("j"))
		if c := home.table.Cursor(); c != 1 {
			t.Errorf("%s: after it opened and closed, j should move the list (row %d)", key, c)
		}
	}
}

// An open whose Cmd never ran does not leave the keyboard dead.
func TestHeldKeysComeBackAfterAMomentWithoutTheView(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	c := testCommon(t, 80, 20)
	c.Now = func() time.Time { return now }
	c.open(newDeriveView(c, "", ""))
	if !c.holdingKeys() {
		t.Fatal("keys should be held while the view opens")
	}
	now = now.Add(openWait + time.Second)
	if c.holdingKeys() {
		t.Fatal("keys should come back once the open is overdue")
	}
}

// d on a group counts its records before the dialog opens: keys typed
// meanwhile do not move or act on the list, and esc gives the delete up.
func TestKeysWhileTheDeleteDialogCountsDoNotReachTheList(t *testing.T) {
	target, _ := startEmulator(t, 0)
	m := appOn(t, target, false)
	home := m.top().(*groupsView)
	first, _ := home.table.Selected()
	keysBeforeOpen(t, m, "d", "j", "enter")
	if c := home.table.Cursor(); c != 0 || len(m.stack) != 1 {
		t.Fatalf("keys typed while d counted moved the list (row %d) or opened a view (stack %d)", c, len(m.stack))
	}
	if home.confirm == nil || !strings.Contains(home.confirm.Text, first.EnrollmentGroupID) {
		t.Fatalf("the delete dialog should ask about %s:\n%s", first.EnrollmentGroupID, plain(screen(m)))
	}
	m.send(press("n"))

	cmd := m.send(press("d"))
	m.send(press("esc"))
	feed(t, m, cmd, 20)
	if home.confirm != nil || home.Busy() {
		t.Fatalf("esc while counting should give the delete up:\n%s", plain(screen(m)))
	}
	m.send(press("j"))
	if c := home.table.Cursor(); c != 1 {
		t.Fatalf("after esc the list takes keys again (row %d)", c)
	}
}

// Keys typed once the edit form is up but before its group has loaded are
// the form's: q does not quit the console beneath it (it did, for a fast
// "Ejjq"), and esc still leaves the form.
func TestKeysWhileTheEditFormLoadsStayInIt(t *testing.T) {
	target, _ := startEmulator(t, 0)
	m := appOn(t, target, false)
	opened, ok := m.send(press("E"))().(openMsg)
	if !ok {
		t.Fatal("E should open the edit form")
	}
	load := m.send(opened) // pushed; its load not yet delivered
	if len(m.stack) != 2 {
		t.Fatalf("the form should be open above home; stack %d", len(m.stack))
	}
	for _, k := range []string{"j", "j", "q", "?", ":"} {
		if cmd := m.send(press(k)); cmd != nil || m.quitting || m.showHelp || m.cmdMode {
			t.Fatalf("%s while the form loads reached the console (quitting %v, help %v, : line %v)", k, m.quitting, m.showHelp, m.cmdMode)
		}
	}
	feed(t, m, load, 20)
	if _, ok := m.top().(*groupEditView); !ok || len(m.stack) != 2 {
		t.Fatalf("the form should be open once loaded; stack %d", len(m.stack))
	}

	// esc before the load arrives leaves the form.
	m = appOn(t, target, false)
	opened = m.send(press("E"))().(openMsg)
	m.send(opened)
	feed(t, m, m.send(press("esc")), 5)
	if len(m.stack) != 1 {
		t.Fatalf("esc while the form loads should leave it; stack %d", len(m.stack))
	}
}
