package cleanup

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

func byReason(p *Plan) map[Reason]map[string]int {
	out := map[Reason]map[string]int{}
	for _, f := range p.Findings {
		if out[f.Reason] == nil {
			out[f.Reason] = map[string]int{}
		}
		out[f.Reason][f.GroupID]++
	}
	return out
}

// The demo seed's deleted group is found with no hints at all: its devices
// are still in the hubs, and no live enrollment reaches their records.
func TestScanDemoSeedFindsDeletedGroupsRecords(t *testing.T) {
	f := startFixture(t, emulator.Options{Seed: "demo"})
	events := make(chan Event, 64)
	wait := collect(events)
	plan, err := f.engine.Scan(context.Background(), ScanOptions{}, events)
	got := wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Findings) != 12 {
		t.Fatalf("findings = %d (%v), want the 12 records of %s", len(plan.Findings), byReason(plan), emulator.DemoDeletedGroup)
	}
	for _, fd := range plan.Findings {
		if fd.Reason != ReasonNoEnrollment || !strings.HasPrefix(fd.RegistrationID, "retired-sensor-") || !fd.HubDevice || fd.ETag == "" {
			t.Errorf("finding %+v: want a no-enrollment record of a retired sensor, with its hub device and ETag", fd)
		}
	}
	sources := map[string]bool{}
	for _, ev := range got {
		if sp, ok := ev.(ScanProgress); ok && sp.Done {
			sources[sp.Source] = true
		}
	}
	for _, s := range []string{SourceGroups, SourceEnrollments, SourceLiveRecords, SourceHubDevices, SourceJournal, SourceLookups} {
		if !sources[s] {
			t.Errorf("no final ScanProgress for %q", s)
		}
	}
	// The live groups are in the journal now.
	j, err := OpenJournal(f.engine.StateDir, f.dps.Host())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(j.Groups()); n != 2 {
		t.Errorf("journal holds %d groups, want the 2 live ones", n)
	}
}

// Every source at once: a journal group that is gone, a group the operator
// names, a live group (whose records, with no hub identities, are stale),
// and an operator-named group that turns out to be live.
func TestScanSourcesAndReasons(t *testing.T) {
	f := startFixture(t, emulator.Options{})
	ctx := context.Background()
	f.createGroup(t, "live")
	f.seed(t, "live", 30)
	f.seed(t, "journalled", 40)
	f.seed(t, "given", 25)
	f.seed(t, "unknown", 5) // nobody knows this group and no hub has its devices: invisible
	j, err := OpenJournal(f.engine.StateDir, f.dps.Host())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Seen("journalled"); err != nil {
		t.Fatal(err)
	}
	plan, err := f.engine.Scan(ctx, ScanOptions{GroupIDs: []string{"given", "LIVE"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Reason]map[string]int{
		ReasonGroupDeleted: {"journalled": 40},
		ReasonGivenGroup:   {"given": 25},
		ReasonStale:        {"live": 30},
	}
	if got := byReason(plan); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("findings by reason and group = %v, want %v", got, want)
	}
	if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], `"LIVE" exists`) {
		t.Errorf("notes = %q, want one saying LIVE exists", plan.Notes)
	}
	// Stale records are shown, but deleted only when asked.
	if n := len(plan.Actions(Selection{})); n != 65 {
		t.Errorf("actions without include-stale = %d, want 65", n)
	}
	if n := len(plan.Actions(Selection{IncludeStale: true})); n != 95 {
		t.Errorf("actions with include-stale = %d, want 95", n)
	}
	counts := plan.Counts(Selection{})
	if len(counts) != 3 || counts[0].Reason != ReasonGroupDeleted || counts[2].Selected {
		t.Errorf("counts = %+v, want group-deleted first and stale last, unselected", counts)
	}
}
