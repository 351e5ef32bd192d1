package cleanup

import (
	"os"
	"slices"
	"testing"
)

func TestJournalRemembersGroupsAcrossOpens(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(dir, "my-dps.azure-devices-provisioning.net")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Seen("a", "b", "a"); err != nil {
		t.Fatal(err)
	}
	if err := j.Deleted("b"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode = %v, want 0600", fi.Mode().Perm())
	}
	// A crash mid-write leaves a torn line; later entries must survive it.
	f, err := os.OpenFile(j.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"t":"2026-01-01T00:00:00Z","seen":["tor`)
	f.Close()
	j2, err := OpenJournal(dir, "my-dps.azure-devices-provisioning.net")
	if err != nil {
		t.Fatal(err)
	}
	if err := j2.Seen("c"); err != nil {
		t.Fatal(err)
	}

	j3, err := OpenJournal(dir, "my-dps.azure-devices-provisioning.net")
	if err != nil {
		t.Fatal(err)
	}
	var ids, deleted []string
	for _, g := range j3.Groups() {
		ids = append(ids, g.ID)
		if !g.Deleted.IsZero() {
			deleted = append(deleted, g.ID)
		}
	}
	if !slices.Equal(ids, []string{"a", "b", "c"}) || !slices.Equal(deleted, []string{"b"}) {
		t.Errorf("groups = %v, deleted = %v; want [a b c], [b]", ids, deleted)
	}
	// Seeing a deleted group again (re-created) makes it live again.
	if err := j3.Seen("b"); err != nil {
		t.Fatal(err)
	}
	for _, g := range j3.Groups() {
		if g.ID == "b" && !g.Deleted.IsZero() {
			t.Error("group b is still marked deleted after it was seen again")
		}
	}
	other, err := OpenJournal(dir, "other:8443")
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Groups()) != 0 {
		t.Errorf("another host's journal has %v", other.Groups())
	}
}
