package tui

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// waitForRe waits until the screen matches re.
func (f *flow) waitForRe(step, re string) {
	f.t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(20 * time.Second)
	for !r.MatchString(f.screen()) {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: screen never matched %s:\n%s", step, re, f.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFlowFleetRunStopResume drives :fleet in a real Program against the
// emulator: the form (prefilled from the selected group) refuses a bad
// count with the CLI's text, the run starts and its frames show progress,
// s stops it saying how many finished, r resumes it to the summary, no
// device is registered twice, a device's timeline opens, and a second run
// over the same IDs asks before registering them again.
func TestFlowFleetRunStopResume(t *testing.T) {
	target, _ := startEmulator(t, time.Second)
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet", emulator.TutorialGroupID)
	f.keys("/")
	f.typeText("legacy")
	f.waitFor("filter", "1/2")
	f.keys("enter", "f")
	f.waitFor("form", "Group        mylegacydevices", "Concurrency  100")

	f.keys("tab")
	f.typeText("x")
	f.keys("enter")
	f.waitFor("validation", `invalid argument "x" for "--devices" flag`)
	f.keys("backspace")
	f.typeText("20")
	for range 6 { // to Concurrency
		f.keys("tab")
	}
	f.keys("backspace", "backspace", "backspace")
	f.typeText("5")
	f.keys("enter")
	f.waitFor("running", "rate/s", "in flight", "/20 (")
	f.waitForRe("progress", `assigned [1-9]`)
	f.keys("s")
	f.waitFor("stopped", "stopped", "pending", "r resumes the run")
	if strings.Contains(f.screen(), "20 of 20 finished") {
		t.Fatalf("the stop came too late to test a resume:\n%s", f.screen())
	}
	f.keys("r")
	f.waitFor("resumed to the end", "complete", "20 of 20 finished", "0 pending", "assigned 20")

	recs := map[string]dps.DeviceRegistrationState{}
	pager := target.Service.NewRegistrationStatePager(emulator.TutorialGroupID, nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Items {
			recs[r.RegistrationID] = r
		}
	}
	if len(recs) != 20 {
		t.Fatalf("%d records, want 20", len(recs))
	}
	for id, r := range recs {
		if r.Status != dps.StatusAssigned || r.Substatus != dps.SubstatusInitialAssignment {
			t.Errorf("%s: %s/%s: registered twice?", id, r.Status, r.Substatus)
		}
	}

	f.keys("enter")
	f.waitFor("timeline", "request sent", "assigned to ")
	f.keys("esc")
	f.waitFor("back on the dashboard", "20 of 20 finished")

	f.keys("tab", "enter")
	f.waitFor("re-register question", "20 of the run's 20 device IDs already have registration records", "register all 20 again")
	f.keys("n")
	f.waitFor("cancelled", "Group        mylegacydevices")
	if len(recs) != 20 {
		t.Fatal("unreachable")
	}
}
