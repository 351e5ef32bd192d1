package tui

import (
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/keys"
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
	batch, ok := v.tl.start(flowRegID, key, nil)().(tea.BatchMsg)
	if !ok || len(batch) == 0 {
		t.Fatal("start did not return the registration and its ticker")
	}
	first, ok := batch[0]().(routed).msg.(registerEvent)
	if !ok || first.ch == nil {
		t.Fatalf("first message %#v", first)
	}
	m.update(press("esc")) // closes the simulate view
	if m.top() == view(v) {
		t.Fatal("esc did not close the simulate view")
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, open := <-first.ch:
			if !open {
				return // the registration goroutine ended
			}
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
	batch := tl.start(flowRegID, key, nil)().(tea.BatchMsg)
	old := batch[0]().(routed).msg.(registerEvent)
	tl.start(flowRegID, key, nil)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, open := <-old.ch:
			if !open {
				tl.stop()
				return
			}
		case <-deadline:
			t.Fatal("the replaced run kept running")
		}
	}
}
