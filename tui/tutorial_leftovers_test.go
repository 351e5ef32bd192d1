package tui

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// Removing a tutorial run's leftovers deletes its group only when no
// record is left in it: records of devices the tutorial did not make (a
// fleet run into the tutorial's group) would be orphaned. The group is kept
// and the note says why; with nothing else in it, it goes.
func TestTutorialLeftoversKeepAGroupHoldingOthersRecords(t *testing.T) {
	target, emu := startEmulator(t, 0)
	ctx := context.Background()
	j := &tutorialJournal{path: filepath.Join(t.TempDir(), tutorialJournalName), dps: "emulator"}
	for _, id := range []string{"dpsconsole-tutorial-kept", "dpsconsole-tutorial-gone"} {
		if _, err := target.Service.CreateOrUpdateEnrollmentGroup(ctx, dps.EnrollmentGroup{EnrollmentGroupID: id, Attestation: dps.AttestationMechanism{
			Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{PrimaryKey: dps.Secret(keys.GenerateKey().Base64())}}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := j.made(id, tutorialObject{Kind: madeGroup, ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := emu.SeedRegistrations(ctx, "dpsconsole-tutorial-kept", 1); err != nil { // someone else's device
		t.Fatal(err)
	}

	removed, note, err := removeTutorialRun(ctx, target, j, tutorialRun{Group: "dpsconsole-tutorial-kept", Objects: []tutorialObject{{Kind: madeGroup, ID: "dpsconsole-tutorial-kept"}}}, nil)
	if err != nil || len(removed) != 0 || !strings.Contains(note, "kept group dpsconsole-tutorial-kept") || !strings.Contains(note, "orphaned") {
		t.Fatalf("removed %v, note %q, err %v; want the group kept and the note saying why", removed, note, err)
	}
	if _, err := target.Service.GetEnrollmentGroup(ctx, "dpsconsole-tutorial-kept"); err != nil {
		t.Fatalf("the group holding another device's record was deleted: %v", err)
	}

	removed, note, err = removeTutorialRun(ctx, target, j, tutorialRun{Group: "dpsconsole-tutorial-gone", Objects: []tutorialObject{{Kind: madeGroup, ID: "dpsconsole-tutorial-gone"}}}, nil)
	if err != nil || len(removed) != 1 || !strings.Contains(note, "deleted group dpsconsole-tutorial-gone") {
		t.Fatalf("removed %v, note %q, err %v; want the empty group deleted", removed, note, err)
	}
	if _, err := target.Service.GetEnrollmentGroup(ctx, "dpsconsole-tutorial-gone"); !dps.IsNotFound(err) {
		t.Fatalf("the empty group is still there: %v", err)
	}
}
