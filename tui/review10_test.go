package tui

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Review of issue #10: the groups the tutorial creates and removes show on
// home without r (views an action changed are refreshed).
func TestTutorialGroupsReachHomeWithoutRefresh(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet")
	f.keys(":")
	f.typeText("tutorial")
	f.keys("enter")
	f.waitFor("open", "[▸] 1.")
	group := f.p.stack[len(f.p.stack)-1].(*tutorialView).groupID
	f.keys("enter")
	f.waitFor("group", "created group "+group)
	f.keys("esc", "esc")
	f.waitFor("leave dialog", "keep them and leave")
	f.keys("k")
	f.waitFor("home lists the kept group", "3 groups", "  "+group)

	f.keys(":")
	f.typeText("tutorial")
	f.keys("enter")
	f.waitFor("leftovers", "remove them now")
	f.keys("y")
	f.waitFor("removed", "removed the earlier run's leftovers")
	f.keys("esc")
	f.waitFor("home", "2 groups")
	time.Sleep(300 * time.Millisecond)
	if s := f.screen(); strings.Contains(s, "  "+group) {
		t.Fatalf("home still lists the removed group %s:\n%s", group, s)
	}
}

// A :command refused under --readonly flashes as refused (!), not as done (✓).
func TestReadOnlyRefusalFlashesAsRefused(t *testing.T) {
	m := New(context.Background(), Options{Target: &Target{Name: "test"}, ReadOnly: true, Start: "derive"})
	for _, name := range []string{"simulate", "tutorial"} {
		msg, ok := m.runCommand(":" + name)().(flashMsg)
		if !ok || msg.level != levelWarning || !strings.Contains(msg.text, "off in read-only mode") {
			t.Fatalf(":%s under --readonly flashed %#v, want a warning", name, msg)
		}
	}
}
