package tui

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps"
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

// At 80×24 a 412 on save shows the fields that changed elsewhere: the twin
// field gives up the lines the conflict needs. Before, the screen ended at
// the conflict table's header and the operator saw no field.
func TestGroupEditConflictFits80x24(t *testing.T) {
	m, target := newEmulatorApp(t, 80, 24)
	pressOn(t, m, "E") // the first group: hashed-fleet, with a twin
	v, ok := m.top().(*groupEditView)
	if !ok || v.base == nil {
		t.Fatalf("E did not open the edit form:\n%s", plain(screen(m)))
	}
	ctx := context.Background()
	elsewhere, err := readGroupWithKeys(ctx, target.Service, v.groupID)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere.InitialTwin = &dps.InitialTwin{Tags: dps.TwinCollection{"site": "oslo"}}
	etag := azcore.ETag(elsewhere.ETag)
	if _, err := target.Service.CreateOrUpdateEnrollmentGroup(ctx, elsewhere, &dps.WriteOptions{IfMatch: &etag}); err != nil {
		t.Fatal(err)
	}
	pressOn(t, m, "right", "enter") // Status: disabled, then save
	wantScreen(t, m, "changed elsewhere", `Initial twin  {"tags":{"site":"oslo"}}`, "Status", "r reloads")
	for i, l := range strings.Split(plain(screen(m)), "\n") {
		if ansi.StringWidth(l) > 80 || i >= 24 {
			t.Errorf("line %d does not fit 80×24: %q", i+1, l)
		}
	}
	// r reloads theirs: the twin field has its lines again.
	pressOn(t, m, "r")
	if want := min(v.height-13, 8); v.conflict != nil || v.twin.Height() != want {
		t.Errorf("after r: conflict %v, twin height %d, want none and %d", v.conflict, v.twin.Height(), want)
	}
}

// A clean-up's hub devices without a record list their device IDs whole at
// 80 columns: before, they shared the records' columns, an empty
// REGISTRATION ID and STATUS kept most of the width and the ID was cut.
func TestCleanupUnregisteredListShowsWholeDeviceIDsAt80(t *testing.T) {
	target, emu := startEmulator(t, 0)
	hub1 := knownHubs(target, dps.EnrollmentGroup{})[0]
	const id = "stray-device-000001"
	if err := emu.AddHubDevice(context.Background(), hub1, id); err != nil {
		t.Fatal(err)
	}
	c := testCommon(t, 80, 21)
	c.Target = target
	h := harness(t, c, newCleanupView(c))
	v := h.v.(*cleanupView)
	v.row = len(v.counts)
	h.press("enter")
	out := plain(v.View())
	if !strings.Contains(out, id) || !strings.Contains(out, hub1) {
		t.Fatalf("the drill-down cuts the device ID or its hub:\n%s", out)
	}
	if strings.Contains(out, "REGISTRATION ID") {
		t.Errorf("a device without a record has a REGISTRATION ID column:\n%s", out)
	}
}

// Describe masks a custom allocation's webhook URL (its password and query:
// the function's key) until v, as group edit and the CLI do; before, the
// pane and Y showed the function key in clear.
func TestDescribeMasksTheWebhookURLUntilRevealed(t *testing.T) {
	m, target := newEmulatorApp(t, 120, 40)
	const hook = "https://user:pw@fn.example/api/alloc?code=SECRET123&x=1"
	g := dps.EnrollmentGroup{EnrollmentGroupID: "hooky", Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey},
		AllocationPolicy: dps.AllocationCustom, CustomAllocationDefinition: &dps.CustomAllocationDefinition{WebhookURL: hook, APIVersion: dps.APIVersion}}
	if _, err := target.Service.CreateOrUpdateEnrollmentGroup(context.Background(), g, nil); err != nil {
		t.Fatal(err)
	}
	pressOn(t, m, "r", "down") // hashed-fleet, hooky, mylegacydevices
	pressOn(t, m, "i")
	d := topDescribe(t, m)
	all := describeText(d)
	if strings.Contains(all, "SECRET123") || strings.Contains(all, ":pw@") || !strings.Contains(all, `"webhookUrl": "https://user:xxxxx@fn.example/api/alloc?••••••••"`) {
		t.Fatalf("the webhook URL is not masked:\n%s", all)
	}
	if got := clipboardOf(t, pressOn(t, m, "Y")); strings.Contains(got, "SECRET123") {
		t.Fatal("Y copied the function key before v")
	}
	pressOn(t, m, "v")
	if all := describeText(d); !strings.Contains(all, "code=SECRET123") {
		t.Fatalf("v does not reveal the webhook URL:\n%s", all)
	}
}

// :enrollment ID masks a custom allocation's webhook URL until v, as it
// masks the keys; before, the detail showed the function key in clear.
func TestEnrollmentDetailMasksTheWebhookURL(t *testing.T) {
	m, target := newEmulatorApp(t, 120, 40)
	const hook = "https://fn.example/api/alloc?code=SECRET123"
	e := dps.IndividualEnrollment{RegistrationID: "dev-hook", Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey},
		AllocationPolicy: dps.AllocationCustom, CustomAllocationDefinition: &dps.CustomAllocationDefinition{WebhookURL: hook, APIVersion: dps.APIVersion}}
	if _, err := target.Service.CreateOrUpdateEnrollment(context.Background(), e, nil); err != nil {
		t.Fatal(err)
	}
	command(t, m, "enrollment dev-hook")
	s := wantScreen(t, m, `"webhookUrl": "https://fn.example/api/alloc?••••••••"`)
	if strings.Contains(s, "SECRET123") {
		t.Fatalf("the function key shows before v:\n%s", s)
	}
	pressOn(t, m, "v")
	wantScreen(t, m, "code=SECRET123")
}

// lockedBuffer is a log sink Cmds may write to from other goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// :log says dpsconsole.log has every event, and it does: warnings, news
// and jobs too, whole, where :log cuts them to the width. Before, only
// errors reached the file.
func TestEveryLogEventReachesTheLogFile(t *testing.T) {
	target, _ := startEmulator(t, 0)
	var sink lockedBuffer
	m := New(context.Background(), Options{Target: target, Logger: slog.New(slog.NewJSONHandler(&sink, nil))})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	feed(t, m, m.Init(), 30)
	command(t, m, "find no-such-device-with-a-long-registration-id-that-80-columns-cut")
	pressOn(t, m, "enter", "space", "d", "y") // a deletion: a job starts and finishes
	command(t, m, "log")
	wantScreen(t, m, "has them all", "started: a deletion")
	got := sink.String()
	for _, want := range []string{"no registration record has the ID no-such-device-with-a-long-registration-id-that-80-columns-cut",
		"started: a deletion of registration records", "finished: a deletion of registration records", "deleted 1 registration record"} {
		if !strings.Contains(got, want) {
			t.Errorf("dpsconsole.log lacks %q:\n%s", want, got)
		}
	}
}

// Under --readonly u asks no "Also delete …?" (nothing can be deleted): it
// selects the devices for the preview at once, as h and s do.
func TestCleanupReadOnlyUOffersNoDeletion(t *testing.T) {
	target, emu := startEmulator(t, 0)
	hub1 := knownHubs(target, dps.EnrollmentGroup{})[0]
	if err := emu.AddHubDevice(context.Background(), hub1, "stray-1"); err != nil {
		t.Fatal(err)
	}
	c := testCommon(t, 80, 21)
	c.Target, c.ReadOnly, c.Keys = target, true, DefaultKeyMap(true)
	h := harness(t, c, newCleanupView(c))
	v := h.v.(*cleanupView)
	h.press("u")
	if v.confirm != nil {
		t.Fatalf("read-only u offers a deletion: %q", v.confirm.Text)
	}
	if !v.sel.UnregisteredDevices {
		t.Fatal("u did not select the devices for the preview")
	}
	h.press("p")
	if out := plain(v.View()); !strings.Contains(out, "stray-1") {
		t.Errorf("the preview lacks the device u selected:\n%s", out)
	}
}

// :export of a group that does not exist, and whose ID no record carries,
// says so beside "Exported 0 records", as the CLI does.
func TestExportOfAnUnknownGroupSaysSoInTheConsole(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	v := newExportView(c)
	v.Init()
	typeText(v.Update, "nosuch")
	v.f.Set(exportFile, filepath.Join(t.TempDir(), "x.jsonl"))
	v.f.FocusOn(exportFile)
	runUntil(t, v.Update, v.Update(press("enter")), func() bool { return !v.Busy() })
	if got := plain(v.View()); !strings.Contains(got, `No enrollment group "nosuch" exists, and no record carries that group ID`) {
		t.Errorf("view:\n%s", got)
	}
}
