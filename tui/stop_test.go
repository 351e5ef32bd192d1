package tui

import (
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/timeline"
)

// A registration still polling when its view is closed must end: nobody
// reads its events any more, so without a stop its goroutine would keep
// polling DPS (and then block) until the console exits.
func TestClosingSimulateStopsItsRegistration(t *testing.T) {
	target, _ := startEmulator(t, time.Hour) // stays "assigning": polls forever
	c := testCommon(t, 100, 30)
	c.Target, c.Now = target, time.Now
	m := New(c.Ctx, Options{Target: target})
	v := newSimulateView(m.c, "", flowRegID)
	m.push(v)
	key, err := keys.ParseKey(tutorialDeviceKey)
	if err != nil {
		t.Fatal(err)
	}
	batch, ok := v.tl.Start(flowRegID, key, nil)().(tea.BatchMsg)
	if !ok || len(batch) == 0 {
		t.Fatal("start did not return the registration and its ticker")
	}
	first, ok := batch[0]().(routed).msg.(timeline.RegisterMsg)
	if !ok || first.Ended() == nil {
		t.Fatalf("first message %#v", first)
	}
	m.update(press("esc")) // closes the simulate view
	if m.top() == view(v) {
		t.Fatal("esc did not close the simulate view")
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-first.Ended():
			return // the registration goroutine ended
		case <-deadline:
			t.Fatal("the registration kept running after its view was closed")
		}
	}
}

// A new run replaces the old one: the old run stops rather than polling on
// unheard.
func TestNewRunStopsTheOldOne(t *testing.T) {
	target, _ := startEmulator(t, time.Hour)
	c := testCommon(t, 100, 30)
	c.Target, c.Now = target, time.Now
	tl := newTimeline(c, 1)
	key, _ := keys.ParseKey(tutorialDeviceKey)
	batch := tl.Start(flowRegID, key, nil)().(tea.BatchMsg)
	old := batch[0]().(routed).msg.(timeline.RegisterMsg)
	tl.Start(flowRegID, key, nil)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-old.Ended():
			tl.Stop()
			return
		case <-deadline:
			t.Fatal("the replaced run kept running")
		}
	}
}
