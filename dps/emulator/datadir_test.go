package emulator

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// stoppedDir is the data dir of an emulator that ran once and stopped, with
// its ID scope.
func stoppedDir(t *testing.T) (dir, scope string) {
	t.Helper()
	dir = t.TempDir()
	e := startTest(t, Options{DataDir: dir, Seed: "none"})
	scope = e.idScope
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, scope
}

func removeDB(t *testing.T, dir string) {
	for _, f := range []string{dbFile, dbFile + "-wal", dbFile + "-shm"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// TestDamagedDataDirsRefused: a data dir whose database is empty, garbage or
// gone, or whose settings are gone, is refused with what to do, and left as
// it was: never re-seeded with a new ID scope and keys that strand every
// device and client configured for the old ones.
func TestDamagedDataDirsRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string
	}{
		{"0-byte database", func(t *testing.T, dir string) {
			removeDB(t, dir)
			os.WriteFile(filepath.Join(dir, dbFile), nil, 0o600)
		}, []string{"empty or damaged", dbFile}},
		{"garbage database", func(t *testing.T, dir string) {
			removeDB(t, dir)
			os.WriteFile(filepath.Join(dir, dbFile), []byte(strings.Repeat("not a database ", 300)), 0o600)
		}, []string{"empty or damaged", dbFile}},
		{"database gone", func(t *testing.T, dir string) { removeDB(t, dir) }, []string{"no database", caCertFile, "put " + dbFile + " back"}},
		{"settings gone", func(t *testing.T, dir string) {
			st, _, err := openStore(dir, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.exec(t.Context(), `DELETE FROM settings`); err != nil {
				t.Fatal(err)
			}
			st.close()
		}, []string{"ID scope", "settings", caCertFile}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, scope := stoppedDir(t)
			c.damage(t, dir)
			before := listDir(t, dir)
			e, err := Start(context.Background(), Options{DataDir: dir, Seed: "none"})
			if err == nil {
				e.Close()
				t.Fatalf("Start on a dir with a %s succeeded (ID scope %s, was %s)", c.name, e.idScope, scope)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "another build") {
				t.Errorf("error %q blames another build", err)
			}
			if after := listDir(t, dir); after != before {
				t.Errorf("the refused start changed the data dir:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// listDir lists a dir's files with their sizes (the lock file aside).
func listDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, en := range ents {
		if strings.Contains(en.Name(), "lock") {
			continue
		}
		info, _ := en.Info()
		b.WriteString(en.Name() + ":" + strconv.FormatInt(info.Size(), 10) + " ")
	}
	return b.String()
}

// TestDamagedGroupBreaksOnlyItself: a group row that no longer decodes is
// named wherever it is touched, and the other groups keep working: the
// listing skips it, GET says which group and what is damaged, the devices of
// other groups still register, and the broken group can be deleted.
func TestDamagedGroupBreaksOnlyItself(t *testing.T) {
	for name, damage := range map[string]string{
		"not JSON":   `doc = '{"enrollmentGroupId":"b", "attes', public_doc = '{"enrollmentGroupId":"b", "attes'`,
		"wrong type": `doc = '{"enrollmentGroupId":"b","attestation":5}', public_doc = '{"enrollmentGroupId":"b","attestation":5}'`,
	} {
		t.Run(name, func(t *testing.T) {
			e := startTest(t, Options{Seed: "none"})
			s := newSvc(t, e)
			ka := createGroup(t, e, map[string]any{"enrollmentGroupId": "a"})
			createGroup(t, e, map[string]any{"enrollmentGroupId": "B"})
			createGroup(t, e, map[string]any{"enrollmentGroupId": "c"})
			if _, err := e.store.w.Exec(`UPDATE groups SET ` + damage + ` WHERE id_key = 'b'`); err != nil {
				t.Fatal(err)
			}

			_, b := s.must(http.StatusOK, http.MethodPost, "/enrollmentGroups/query"+av, nil)
			var ids []string
			for _, g := range decode[[]dps.EnrollmentGroup](t, b) {
				ids = append(ids, g.EnrollmentGroupID)
			}
			if strings.Join(ids, ",") != "a,c" {
				t.Errorf("listing: groups %v, want a and c", ids)
			}
			for _, req := range [][2]string{{http.MethodGet, "/enrollmentGroups/b"}, {http.MethodPost, "/enrollmentGroups/b/attestationMechanism"}} {
				resp, b := s.req(req[0], req[1]+av, nil)
				ed := decode[dps.ErrorDetails](t, b)
				if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(ed.Message, `enrollment group "b"`) || !strings.Contains(ed.Message, "damaged") ||
					!strings.Contains(ed.Message, "delete it") {
					t.Errorf("%s %s: HTTP %d %q, want 500 naming the group, the damage and the fix", req[0], req[1], resp.StatusCode, ed.Message)
				}
			}
			s.must(http.StatusOK, http.MethodGet, "/enrollmentGroups/a"+av, nil)

			dk, _ := keys.DeriveDeviceKey(ka, "dev-a")
			if st := newRawDevice(t, e, "dev-a", dk).register(`{"registrationId":"dev-a"}`); st.Status != dps.StatusAssigned {
				t.Errorf("a device of group a, beside a damaged group: %+v", st)
			}
			s.must(http.StatusNoContent, http.MethodDelete, "/enrollmentGroups/b"+av, nil)
			_, b = s.must(http.StatusOK, http.MethodPost, "/enrollmentGroups/query"+av, nil)
			if n := len(decode[[]dps.EnrollmentGroup](t, b)); n != 2 {
				t.Errorf("%d groups after deleting the damaged one, want 2", n)
			}
		})
	}
}

// TestDamagedEnrollmentRow: the long listings (enrollments here) leave out a
// truncated row too, and GET names it.
func TestDamagedEnrollmentRow(t *testing.T) {
	e := startTest(t, Options{Seed: "none"})
	s := newSvc(t, e)
	for _, id := range []string{"x", "y"} {
		s.must(http.StatusOK, http.MethodPut, "/enrollments/"+id+av, map[string]any{"registrationId": id, "attestation": map[string]any{"type": "symmetricKey"}})
	}
	if _, err := e.store.w.Exec(`UPDATE enrollments SET public_doc = substr(public_doc, 1, 20) WHERE id_key = 'x'`); err != nil {
		t.Fatal(err)
	}
	_, b := s.must(http.StatusOK, http.MethodPost, "/enrollments/query"+av, nil)
	if got := decode[[]dps.IndividualEnrollment](t, b); len(got) != 1 || got[0].RegistrationID != "y" {
		t.Errorf("listing: %s, want only y", b)
	}
	resp, b := s.req(http.MethodGet, "/enrollments/x"+av, nil)
	if ed := decode[dps.ErrorDetails](t, b); resp.StatusCode != http.StatusInternalServerError || !strings.Contains(ed.Message, `enrollment "x" is damaged`) {
		t.Errorf("GET x: HTTP %d %q, want 500 naming the damaged enrollment", resp.StatusCode, ed.Message)
	}
}
