package tui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Outside review of #13: each test reproduces a defect found by running the
// console as a new operator would.

// An invalid group ID in :export is refused, as `registrations export
// --group 'a b'` refuses it, and no file is written; before, it exported
// "0 records" into the file.
func TestExportRefusesAnInvalidGroupID(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	file := filepath.Join(t.TempDir(), "out.jsonl")
	v := newExportView(c)
	v.Init()
	typeText(v.Update, "no such")
	v.f.Set(exportFile, file)
	v.f.FocusOn(exportFile)
	runUntil(t, v.Update, v.Update(press("enter")), func() bool { return !v.Busy() })
	if _, err := os.Stat(file); err == nil {
		t.Errorf("a file was written for group %q", "no such")
	}
	got := plain(v.View())
	if !strings.Contains(got, `invalid group "no such"`) || !strings.Contains(got, "space is not allowed") {
		t.Errorf("view does not name the bad group ID:\n%s", got)
	}
	if v.f.Focus() != exportGroup {
		t.Errorf("focus %d: want the group field, to correct it", v.f.Focus())
	}
}
