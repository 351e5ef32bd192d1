package tui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// startEmulator runs the real emulator in-process (demo seed) and returns a
// Target for it, as the console builds one.
func startEmulator(t testing.TB, delay time.Duration) (*Target, *emulator.Emulator) {
	t.Helper()
	return startEmulatorAt(t, t.TempDir(), delay)
}

// startEmulatorAt runs it on a data dir, seeding the demo data when new.
func startEmulatorAt(t testing.TB, dataDir string, delay time.Duration) (*Target, *emulator.Emulator) {
	t.Helper()
	ctx := context.Background()
	emu, err := emulator.Start(ctx, emulator.Options{DataDir: dataDir, HTTPSAddr: "127.0.0.1:0", Seed: "demo", AssignmentDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := dps.NewTransport(emu.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	// Idle HTTP/2 connections would hold Close for a second.
	t.Cleanup(func() { tr.CloseIdleConnections(); emu.Close() })
	opts := &dps.ClientOptions{}
	opts.Transport = tr
	opts.Retry.MaxRetries = -1
	env := emu.Env()
	svc, err := dps.NewClientFromConnectionString(env.DPSConnectionString, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &Target{Name: "emulator", IDScope: env.IDScope, DeviceEndpoint: env.DeviceEndpoint, Service: svc,
		MQTTEndpoint: env.MQTTEndpoint, HubMQTTEndpoints: hubMQTT(env),
		HubConnectionStrings: env.HubConnectionStrings, HTTPClient: tr, StateDir: t.TempDir()}, emu
}

// hubMQTT maps each hub of env to its MQTT listener.
func hubMQTT(env emulator.Env) map[string]string {
	m := map[string]string{}
	for i, cs := range env.HubConnectionStrings {
		c, _ := keys.ParseServiceConnectionString(cs)
		m[strings.ToLower(c.HostName)] = env.HubMQTTEndpoints[i]
	}
	return m
}

// probe wraps the root model in a real Program and keeps the last screen as
// plain text, taken on the program's goroutine, for the test to wait on.
type probe struct {
	*Model
	mu   *sync.Mutex
	last *string
}

func (p probe) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := p.Model.Update(msg)
	s := plain(p.Model.View().Content)
	p.mu.Lock()
	*p.last = s
	p.mu.Unlock()
	return p, cmd
}

type flow struct {
	t    *testing.T
	tm   *teatest.TestModel
	p    probe
	step string
}

func startFlow(t *testing.T, target *Target, readOnly bool) *flow {
	m := New(context.Background(), Options{Target: target, ReadOnly: readOnly})
	p := probe{Model: m, mu: &sync.Mutex{}, last: new(string)}
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(120, 40))
	t.Cleanup(func() { tm.Quit() })
	return &flow{t: t, tm: tm, p: p}
}

func (f *flow) screen() string {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return *f.p.last
}

// waitFor waits until the screen contains every want.
func (f *flow) waitFor(step string, want ...string) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := f.screen()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: screen never showed %q:\n%s", step, want, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *flow) keys(ks ...string) {
	for _, k := range ks {
		f.tm.Send(press(k))
		time.Sleep(30 * time.Millisecond)
	}
}

func (f *flow) typeText(s string) { f.tm.Type(s) }

const flowRegID = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"

// TestFlowBrowseDeriveSimulateDelete drives the whole console in a real
// Program against the in-process emulator at 120×40: browse the groups,
// open the tutorial group, derive the tutorial key, simulate the device to
// assigned, then delete its registration record.
func TestFlowBrowseDeriveSimulateDelete(t *testing.T) {
	target, _ := startEmulator(t, 300*time.Millisecond)
	f := startFlow(t, target, false)

	f.waitFor("browse", "hashed-fleet", emulator.TutorialGroupID, "2/2")
	f.keys("/")
	f.typeText("legacy")
	f.waitFor("filter", "1/2")
	f.keys("enter", "enter")
	f.waitFor("open group", "Group mylegacydevices", "Primary key ••••••••", "0/0")

	f.keys("x")
	f.waitFor("derive from the group", "key loaded from group mylegacydevices")
	f.typeText(flowRegID)
	f.waitFor("derive", tutorialDeviceKey)
	f.keys("esc")
	f.keys("esc")
	f.waitFor("back to the group", "Group mylegacydevices", "REGISTRATION ID")

	f.keys("s")
	f.waitFor("simulate", "Simulate device")
	f.typeText(flowRegID)
	f.keys("enter", "enter")
	f.waitFor("simulate to assigned", "poll 1", "✓ assigned → hub", "substatus initialAssignment")
	f.keys("ctrl+t")
	f.waitFor("telemetry", "Telemetry: 1 sent")
	f.keys("enter") // again: a registered device reprovisions (same hub: the substatus stays)
	f.waitFor("reprovision", "✓ assigned → hub", "substatus initialAssignment", "Telemetry: 0 sent")

	f.keys("esc")
	f.keys("r")
	f.waitFor("record listed", flowRegID, "1/1")
	f.keys("space", "d")
	f.waitFor("confirm", "Delete 1 marked registration record of mylegacydevices?")
	f.keys("y")
	f.waitFor("deleted", "deleted 1 registration record", "0/0")

	if _, err := target.Service.GetRegistrationState(context.Background(), flowRegID); !dps.IsNotFound(err) {
		t.Fatalf("the record should be gone from the emulator, got %v", err)
	}
	f.keys("q")
	f.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// TestFlowReadOnlyHidesDestructiveActions: with --readonly the footer offers
// no delete, and d does nothing.
func TestFlowReadOnlyHidesDestructiveActions(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, true)
	f.waitFor("browse", "READ-ONLY", "hashed-fleet", "36")
	if s := f.screen(); strings.Contains(s, "d delete") || strings.Contains(s, "n new") {
		t.Fatalf("read-only footer offers destructive actions:\n%s", s)
	}
	f.keys("d")
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(f.screen(), "Delete enrollment group") {
		t.Fatal("d opened a delete dialog in read-only mode")
	}
}

// TestFlowGroupDeleteOffersToDeleteRecordsFirst: the dialog states how many
// records the group still has and deletes them before the group.
func TestFlowGroupDeleteOffersToDeleteRecordsFirst(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet", "36")
	f.keys("d") // the cursor is on hashed-fleet, the first group
	f.waitFor("dialog", "It still has 36 registration records", "delete the 36 records first")
	f.keys("r")
	f.waitFor("deleted", "deleted enrollment group hashed-fleet", "1/1")
	ctx := context.Background()
	if _, err := target.Service.GetEnrollmentGroup(ctx, emulator.DemoHashedGroup); !dps.IsNotFound(err) {
		t.Fatalf("group still there: %v", err)
	}
	page, err := target.Service.NewRegistrationStatePager(emulator.DemoHashedGroup, nil).NextPage(ctx)
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("records left behind: %d, %v", len(page.Items), err)
	}
}

// TestFlowTutorialEndToEnd runs every tutorial step for real and checks that
// the clean-up left nothing behind: record, group and hub device.
func TestFlowTutorialEndToEnd(t *testing.T) {
	target, _ := startEmulator(t, 200*time.Millisecond)
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet")
	f.keys(":")
	f.typeText("tutorial")
	f.keys("enter")
	f.waitFor("open", "[▸] 1. Create a symmetric-key enrollment group")
	tv := f.p.stack[len(f.p.stack)-1].(*tutorialView)
	regID := tv.regID.Value() // a fresh ID, never the docs' example
	f.keys("enter")
	f.waitFor("group", "[✓] 1.", "created group dpsconsole-tutorial-", "[▸] 2.")
	f.keys("enter") // keep the tutorial's fresh registration ID
	f.waitFor("id", "[✓] 2.", "[▸] 3.")
	f.keys("enter")
	f.waitFor("derive", "[✓] 3.", "device key ")
	f.keys("enter")
	f.waitFor("provision", "[✓] 4.", "✓ assigned → hub 127.0.0.1:")
	f.keys("enter")
	f.waitFor("telemetry", "[✓] 5.", "1 message accepted")
	f.keys("enter")
	f.waitFor("record", "[✓] 6.", "record "+regID+": assigned", "on the hub: enabled, ", "twin version ", `desired {}`)
	f.keys("enter")
	f.waitFor("clean up", "[✓] 7.", "deleted record "+regID+",", "then group dpsconsole-tutorial-", "then hub device "+regID+" on 127.0.0.1:")

	ctx := context.Background()
	if _, err := target.Service.GetRegistrationState(ctx, regID); !dps.IsNotFound(err) {
		t.Fatalf("record left behind: %v", err)
	}
	if _, err := target.Service.GetEnrollmentGroup(ctx, tv.groupID); !dps.IsNotFound(err) {
		t.Fatalf("group left behind: %v", err)
	}
}

// TestFlowCreateAndToggleGroup creates a symmetric-key group with the form
// and disables it with e.
func TestFlowCreateAndToggleGroup(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "2/2")
	f.keys("n")
	f.waitFor("form", "New enrollment group")
	f.typeText("flow-group")
	for range 6 {
		f.keys("enter") // through the fields, keeping the defaults
	}
	f.keys("enter")
	f.waitFor("created", "created enrollment group flow-group", "3/3")
	f.keys("/")
	f.typeText("flow-")
	f.waitFor("filter", "1/3")
	f.keys("enter", "e")
	f.waitFor("asks first", "Disable enrollment group flow-group?")
	f.keys("y")
	f.waitFor("toggled", "group flow-group is now disabled")
	g, err := target.Service.GetEnrollmentGroup(context.Background(), "flow-group")
	if err != nil || g.ProvisioningStatus != dps.ProvisioningDisabled || g.AllocationPolicy != dps.AllocationHashed {
		t.Fatalf("group after toggle: %+v, %v", g, err)
	}
	att, err := target.Service.GetEnrollmentGroupAttestation(context.Background(), "flow-group")
	if err != nil || att.SymmetricKey == nil || len(att.SymmetricKey.PrimaryKey) < 80 {
		t.Fatalf("generated keys must survive the toggle: %v", err)
	}
}

// TestFlowIndividualEnrollments creates, shows (keys masked) and deletes one.
func TestFlowIndividualEnrollments(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "2/2")
	f.keys(":")
	f.typeText("enr")
	f.keys("enter")
	f.waitFor("list", "Individual enrollments")
	f.keys("n")
	f.typeText("flow-device")
	f.keys("enter", "enter", "enter")
	f.waitFor("created", "created enrollment flow-device", "1/1") // listed again: enter opens it
	f.keys("enter")
	f.waitFor("show", "Enrollment flow-device", `"primaryKey": "••••••••"`)
	f.keys("esc", "d")
	f.waitFor("confirm", "Delete the individual enrollment flow-device?")
	f.keys("y")
	f.waitFor("deleted", "deleted enrollment flow-device")
	if _, err := target.Service.GetEnrollment(context.Background(), "flow-device"); !dps.IsNotFound(err) {
		t.Fatalf("enrollment still there: %v", err)
	}
}

// TestFlowCleanUpOrphans scans the demo data, finds the records of the
// deleted group, and deletes them with their hub devices.
func TestFlowCleanUpOrphans(t *testing.T) {
	target, _ := startEmulator(t, 0)
	f := startFlow(t, target, false)
	f.waitFor("browse", "2/2")
	f.keys(":")
	f.typeText("cleanup")
	f.keys("enter")
	f.waitFor("scan", "Orphaned registration records", "no-enrollment")
	f.keys("enter")
	f.waitFor("drill down", "Findings: no-enrollment", "12/12", "retired-sensor-001")
	f.keys("esc")
	f.waitFor("back to the counts", "HUB DEVICES")
	f.keys("h")
	f.waitFor("hub devices", "deleted too", "Selected: 12 records, 12 hub devices")
	f.keys("d")
	f.waitFor("dry run", "Dry run: 12 registration records and 12 hub device identities", "24/24")
	f.keys("d")
	f.waitFor("confirm", "Delete 12 registration records and 12 hub device identities?")
	f.keys("y")
	f.waitFor("run", "finished", "deletes/s", "record: 12 deleted", "hub-device: 12 deleted")
	n, _, err := countRecords(context.Background(), target.Service, emulator.DemoDeletedGroup, 0)
	if err != nil || n != 0 {
		t.Fatalf("orphans left: %d (%v)", n, err)
	}
}
