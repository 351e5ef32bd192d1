package tui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/timeline"
)

// registerThroughTutorialGroup registers id through mylegacydevices, as an
// operator does with the group view's s: a real device of the target.
func registerThroughTutorialGroup(t *testing.T, target *Target, id string) dps.DeviceRegistrationState {
	t.Helper()
	gk, err := keys.ParseKey(emulator.TutorialGroupKey)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := keys.DeriveDeviceKey(gk, id)
	if err != nil {
		t.Fatal(err)
	}
	client, err := target.Device("")
	if err != nil {
		t.Fatal(err)
	}
	st, err := client.Register(context.Background(), id, dk, nil)
	if err != nil || st.Status != dps.StatusAssigned {
		t.Fatalf("registering %s: %+v %v", id, st, err)
	}
	return st
}

// hubDevice reads a device from the hub the target names.
func hubDevice(t *testing.T, target *Target, hubHost, id string) error {
	t.Helper()
	reg, err := target.Registry(hubHost)
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.GetDevice(context.Background(), id)
	return err
}

// The scenario: a real device registered as the docs' example ID
// through mylegacydevices. The tutorial must not default to that ID, must
// refuse it (and an ID with only a hub device), must not replace a group it
// did not create, and must delete only what it created. Its step-4 timeline
// stays on screen once the step succeeded.
func TestTutorialRefusesTakenIDsAndDeletesOnlyItsOwn(t *testing.T) {
	target, _ := startEmulator(t, 0)
	ctx := context.Background()
	real := registerThroughTutorialGroup(t, target, tutorialDocsID)
	const hubOnly = "hub-only-device"
	registerThroughTutorialGroup(t, target, hubOnly)
	if err := target.Service.DeleteRegistrationState(ctx, hubOnly, nil); err != nil {
		t.Fatal(err)
	}

	c := testCommon(t, 120, 60)
	c.Target, c.Now = target, time.Now
	v := newTutorialView(c)
	h := harness(t, c, v)
	fresh := v.regID.Value()
	if fresh == tutorialDocsID || keys.ValidateRegistrationID(fresh) != nil || newTutorialView(c).regID.Value() == fresh {
		t.Fatalf("the default ID must be fresh and valid for every run, got %q", fresh)
	}

	// Step 1 refuses a group ID in use: a PUT would replace its keys.
	taken := v.groupID
	other := dps.EnrollmentGroup{EnrollmentGroupID: taken, Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey,
		SymmetricKey: &dps.SymmetricKeyAttestation{PrimaryKey: emulator.TutorialGroupKey, SecondaryKey: emulator.TutorialGroupKey}}}
	if _, err := target.Service.CreateOrUpdateEnrollmentGroup(ctx, other, nil); err != nil {
		t.Fatal(err)
	}
	h.press("enter")
	if v.done[stepCreateGroup] || !strings.Contains(v.failed, "already exists and the tutorial will not replace it") {
		t.Fatalf("step 1 on a taken group ID: done %v, failed %q", v.done[stepCreateGroup], v.failed)
	}
	if att, err := target.Service.GetEnrollmentGroupAttestation(ctx, taken); err != nil || att.SymmetricKey.PrimaryKey.Reveal() != emulator.TutorialGroupKey {
		t.Fatalf("the other group was changed: %v", err)
	}
	h.press("enter")
	if !v.done[stepCreateGroup] || v.groupID == taken {
		t.Fatalf("step 1 should go on with a new group ID: %q %q", v.groupID, v.failed)
	}

	// Step 2 refuses an ID with a record, and one with only a hub device.
	for _, tc := range []struct{ id, want string }{
		{tutorialDocsID, tutorialDocsID + " already has a registration record (assigned, hub " + real.AssignedHub},
		{hubOnly, "hub " + real.AssignedHub + " already has a device " + hubOnly},
	} {
		v.regID.SetValue(tc.id)
		h.press("enter")
		if v.done[stepChooseID] || !strings.Contains(v.failed, tc.want) || !strings.Contains(v.failed, "choose another ID") {
			t.Fatalf("choosing %s: done %v, failed %q", tc.id, v.done[stepChooseID], v.failed)
		}
		if out := plain(v.View()); !strings.Contains(out, "choose another") || !strings.Contains(out, "(enter retries)") {
			t.Fatalf("the refusal must be on screen in full:\n%s", out)
		}
	}
	v.regID.SetValue(fresh)
	h.press("enter")
	if !v.done[stepChooseID] {
		t.Fatalf("a fresh ID is refused: %q", v.failed)
	}
	h.press("enter", "enter") // derive, provision
	if !v.done[stepProvision] {
		t.Fatalf("provisioning: %q", v.failed)
	}
	h.press("enter") // telemetry
	if out := plain(v.View()); !v.done[stepTelemetry] || !strings.Contains(out, "✓ assigned → hub") || !strings.Contains(out, "register request sent") {
		t.Fatalf("the step-4 timeline must stay on screen after it succeeded:\n%s", out)
	}
	mine := v.tl.Result()
	h.press("enter") // confirm: the record, then the device on its hub
	w, ht := c.Width, c.Height
	c.Width, c.Height = 80, 24-headerHeight-footerHeight
	if out := plain(v.View()); len(strings.Split(out, "\n")) > c.Height || !strings.Contains(out, "on the hub: enabled,") ||
		!strings.Contains(out, "enter runs step 7") {
		t.Fatalf("at 80×24 step 6 shows the device on its hub, and step 7 still fits:\n%s", out)
	}
	c.Width, c.Height = w, ht
	h.press("enter") // clean up
	if !v.done[stepCleanUp] {
		t.Fatalf("clean-up: %q", v.failed)
	}
	c.Width, c.Height = 80, 24-headerHeight-footerHeight
	out := plain(v.View())
	if lines := strings.Split(out, "\n"); len(lines) > c.Height || !strings.Contains(out, "✓ assigned → hub") ||
		!strings.Contains(out, "All done") || !strings.Contains(out, "then hub device") || strings.Contains(out, "on the hub:") {
		t.Fatalf("at 80×24 the timeline gives way to the later steps, keeping its result (%d lines):\n%s", len(lines), out)
	}

	if _, err := target.Service.GetRegistrationState(ctx, tutorialDocsID); err != nil {
		t.Fatalf("the tutorial deleted the existing record of %s: %v", tutorialDocsID, err)
	}
	if err := hubDevice(t, target, real.AssignedHub, tutorialDocsID); err != nil {
		t.Fatalf("the tutorial deleted the existing hub device %s: %v", tutorialDocsID, err)
	}
	if err := hubDevice(t, target, real.AssignedHub, hubOnly); err != nil {
		t.Fatalf("the tutorial deleted the hub device %s: %v", hubOnly, err)
	}
	if _, err := target.Service.GetEnrollmentGroup(ctx, taken); err != nil {
		t.Fatalf("the tutorial deleted the group it did not create: %v", err)
	}
	if _, err := target.Service.GetRegistrationState(ctx, fresh); !dps.IsNotFound(err) {
		t.Fatalf("its own record is left: %v", err)
	}
	if _, err := target.Service.GetEnrollmentGroup(ctx, v.groupID); !dps.IsNotFound(err) {
		t.Fatalf("its own group is left: %v", err)
	}
	if err := hubDevice(t, target, mine.AssignedHub, fresh); !hub.IsNotFound(err) {
		t.Fatalf("its own hub device is left: %v", err)
	}
	if runs, err := newTutorialJournal(target).leftovers(); err != nil || len(runs) != 0 {
		t.Fatalf("the journal still lists %v (%v)", runs, err)
	}
}

// Leaving part-way asks; keeping leaves the objects for the next tutorial,
// which finds them in the journal and removes them; y removes them at once,
// the hub device included when the operator left before seeing the result.
func TestTutorialLeavingPartWayAndLeftovers(t *testing.T) {
	target, _ := startEmulator(t, 0)
	ctx := context.Background()
	f := startFlow(t, target, false)
	f.waitFor("browse", "hashed-fleet")
	// The header's second line is the crumbs or a flash, so wait on the body.
	openTutorial := func(want string) *tutorialView {
		f.keys(":")
		f.typeText("tutorial")
		f.keys("enter")
		f.waitFor("open", want)
		return f.p.stack[len(f.p.stack)-1].(*tutorialView)
	}
	const stepOne = "[▸] 1. Create a symmetric-key enrollment group"

	tv := openTutorial(stepOne)
	group := tv.groupID
	f.keys("enter")
	f.waitFor("group", "created group "+group)
	f.keys("esc", "esc") // the first leaves the ID field
	f.waitFor("leave dialog", "You are leaving the tutorial at step 2", "group "+group, "keep them and leave")
	f.keys("k")
	f.waitFor("kept", "kept what the tutorial created", "hashed-fleet")
	if _, err := target.Service.GetEnrollmentGroup(ctx, group); err != nil {
		t.Fatalf("k must keep the group: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(target.StateDir, tutorialJournalName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal file: %v %v", fi, err)
	}

	openTutorial("A tutorial run of")
	f.waitFor("leftovers", "group "+group, "remove them now")
	f.keys("y")
	f.waitFor("removed", "removed the earlier run's leftovers: deleted group "+group)
	if _, err := target.Service.GetEnrollmentGroup(ctx, group); !dps.IsNotFound(err) {
		t.Fatalf("the leftover group is still there: %v", err)
	}

	// Through provisioning, then leave and remove everything.
	f.keys("esc")
	tv = openTutorial(stepOne)
	group, regID := tv.groupID, tv.regID.Value()
	f.keys("enter")
	f.waitFor("group", "[✓] 1.")
	f.keys("enter")
	f.waitFor("id", "[✓] 2.")
	f.keys("enter", "enter")
	f.waitFor("provisioned", "[✓] 4.", "✓ assigned → hub")
	f.keys("esc")
	f.waitFor("leave dialog", "You are leaving the tutorial at step 5", "record "+regID, "hub device "+regID)
	f.keys("y")
	f.waitFor("left", "tutorial left: deleted record "+regID)
	if _, err := target.Service.GetRegistrationState(ctx, regID); !dps.IsNotFound(err) {
		t.Fatalf("record left: %v", err)
	}
	if _, err := target.Service.GetEnrollmentGroup(ctx, group); !dps.IsNotFound(err) {
		t.Fatalf("group left: %v", err)
	}
	for _, cs := range target.HubConnectionStrings {
		reg, _ := hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: target.clientOptions()})
		if _, err := reg.GetDevice(ctx, regID); !hub.IsNotFound(err) {
			t.Fatalf("hub device left on %s: %v", reg.Host(), err)
		}
	}
	if runs, err := newTutorialJournal(target).leftovers(); err != nil || len(runs) != 0 {
		t.Fatalf("the journal still lists %v (%v)", runs, err)
	}
}

// The journal removes only what it says a run made, per target, and skips
// a torn line.
func TestTutorialJournalLeftovers(t *testing.T) {
	dir := t.TempDir()
	j := &tutorialJournal{path: filepath.Join(dir, tutorialJournalName), dps: "dps-a"}
	other := &tutorialJournal{path: j.path, dps: "dps-b"}
	g := tutorialObject{Kind: madeGroup, ID: "dpsconsole-tutorial-1"}
	r := tutorialObject{Kind: madeRecord, ID: "sn-1"}
	for _, err := range []error{j.made("run1", g), j.made("run1", r), other.made("run9", g), j.gone("run1", r)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	f, _ := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"t":"2026-01-01T00:00:00Z","dps":"dps-a","run":"run2","made":{"kind":"gro`)
	f.Close()
	runs, err := j.leftovers()
	if err != nil || len(runs) != 1 || runs[0].Group != "run1" || len(runs[0].Objects) != 1 || runs[0].Objects[0] != g {
		t.Fatalf("leftovers %+v %v", runs, err)
	}
	raw, _ := os.ReadFile(j.path)
	if strings.Contains(string(raw), "Key") || strings.Contains(string(raw), "key") {
		t.Fatalf("the journal holds no keys:\n%s", raw)
	}
}

// --readonly: simulate, telemetry and the tutorial are writes. They are
// hidden and refused, and no registration reaches the target even through
// a view built directly.
func TestReadOnlyRefusesSimulateTelemetryAndTutorial(t *testing.T) {
	target, _ := startEmulator(t, 0)
	ctx := context.Background()
	f := startFlow(t, target, true)
	f.waitFor("browse", "READ-ONLY", "hashed-fleet")
	for _, cmd := range []string{"simulate", "tutorial"} {
		f.keys(":")
		f.typeText(cmd)
		f.keys("enter")
		f.waitFor(cmd, ":"+cmd+" is off in read-only mode")
		if s := f.screen(); strings.Contains(s, "Simulate device") || strings.Contains(s, "Tutorial:") {
			t.Fatalf(":%s opened in read-only mode:\n%s", cmd, s)
		}
	}
	f.keys("/")
	f.typeText("legacy")
	f.waitFor("filter", "1/2")
	f.keys("enter", "enter")
	f.waitFor("group", "Group mylegacydevices", "0/0")
	f.keys("s")
	time.Sleep(300 * time.Millisecond)
	if s := f.screen(); strings.Contains(s, "Simulate device") || strings.Contains(s, "s simulate") {
		t.Fatalf("s simulates in read-only mode:\n%s", s)
	}
	f.keys("?")
	f.waitFor("help", "s simulate device", "ctrl+t send telemetry", ":groups :group NAME :enrollments :enrollment ID :find ID :derive :cleanup :quota :export :log")

	c := testCommon(t, 100, 30)
	c.Target, c.Now, c.ReadOnly, c.Keys = target, time.Now, true, DefaultKeyMap(true)
	v := newSimulateView(c, emulator.TutorialGroupID, flowRegID)
	h := harness(t, c, v)
	h.press("enter")
	key, _ := keys.ParseKey(tutorialDeviceKey)
	h.run(v.tl.Start(flowRegID, key, nil))
	if _, err := target.Service.GetRegistrationState(ctx, flowRegID); !dps.IsNotFound(err) {
		t.Fatalf("a read-only simulate registered %s: %v", flowRegID, err)
	}
	if !strings.Contains(plain(v.View()), "read-only mode") {
		t.Fatalf("the simulate view must say why:\n%s", plain(v.View()))
	}
	v.tl.Show(timeline.Run{RegID: flowRegID, Result: &dps.DeviceRegistrationState{Status: dps.StatusAssigned, AssignedHub: "hub.example", DeviceID: flowRegID}})
	if msg, ok := v.tl.SendTelemetry()().(flashMsg); !ok || !strings.Contains(msg.text, "read-only") {
		t.Fatalf("telemetry in read-only mode: %#v", msg)
	}
}

// s on a group never pre-fills the selected record: that is a real device.
func TestGroupSimulateStartsWithNoDeviceID(t *testing.T) {
	target, _ := startEmulator(t, 0)
	c := testCommon(t, 120, 30)
	c.Target = target
	v := newGroupView(c, emulator.DemoHashedGroup)
	harness(t, c, v)
	if r, ok := v.table.Selected(); !ok || r.id == "" {
		t.Fatal("the demo group should have a selected record")
	}
	msg, ok := v.Update(press("s"))().(openMsg)
	if !ok {
		t.Fatal("s should open the simulate view")
	}
	sv := msg.v.(*simulateView)
	if sv.f.Value(sfRegID) != "" || sv.f.Value(sfGroup) != emulator.DemoHashedGroup {
		t.Fatalf("simulate opened with group %q, ID %q", sv.f.Value(sfGroup), sv.f.Value(sfRegID))
	}
}

// Simulating an ID that has a record says what re-registering does under
// the group's reprovision policy and waits for y.
func TestSimulateAsksBeforeReRegisteringAnExistingRecord(t *testing.T) {
	target, _ := startEmulator(t, 0)
	ctx := context.Background()
	page, err := target.Service.NewRegistrationStatePager(emulator.DemoHashedGroup, nil).NextPage(ctx)
	if err != nil || len(page.Items) == 0 {
		t.Fatalf("demo records: %v", err)
	}
	before := page.Items[0]
	c := testCommon(t, 120, 30)
	c.Target, c.Now = target, time.Now
	v := newSimulateView(c, emulator.DemoHashedGroup, before.RegistrationID)
	h := harness(t, c, v)
	h.press("enter")
	out := plain(v.View())
	for _, want := range []string{before.RegistrationID + " already has a registration record", "hub " + before.AssignedHub,
		"Under group " + emulator.DemoHashedGroup + "'s policy", "y  register " + before.RegistrationID + " again"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the warning lacks %q:\n%s", want, out)
		}
	}
	if v.tl.RegID() != "" {
		t.Fatal("it registered before the operator said yes")
	}
	h.press("n")
	if v.confirm != nil || v.tl.RegID() != "" {
		t.Fatal("n must cancel without registering")
	}
	if after, _ := target.Service.GetRegistrationState(ctx, before.RegistrationID); !after.LastUpdatedDateTimeUTC.Equal(before.LastUpdatedDateTimeUTC) {
		t.Fatal("the record changed without a yes")
	}
	h.press("enter", "y")
	if !v.tl.Assigned() {
		t.Fatalf("y should register it again: %v", v.tl.Err())
	}
	h.press("enter") // the view's own device now: no second question
	if v.confirm != nil || !v.tl.Assigned() {
		t.Fatal("re-running the ID just confirmed must not ask again")
	}
}

// The warning names what each reprovision policy does to the device.
func TestReRegisterWarningFollowsThePolicy(t *testing.T) {
	r := dps.DeviceRegistrationState{RegistrationID: "dev-1", Status: dps.StatusAssigned, AssignedHub: "hub-a", DeviceID: "dev-1"}
	for _, tc := range []struct {
		group  string
		policy *dps.ReprovisionPolicy
		want   string
	}{
		{"g", &dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}, "(reprovision and migrate data) DPS re-evaluates the hub: if it changes, device dev-1 on hub-a is removed there and moved, twin included"},
		{"g", &dps.ReprovisionPolicy{UpdateHubAssignment: true}, "(reprovision and reset to initial config)"},
		{"g", &dps.ReprovisionPolicy{}, "(never reprovision) device dev-1 on hub-a stays where it is"},
		{"g", nil, "sets no reprovision policy, so DPS reprovisions and migrates data"},
		{"", nil, "the reprovision policy of the enrollment that admits it"},
	} {
		got := reRegisterWarning(&existingRecord{record: r, groupID: tc.group, policy: tc.policy})
		if !strings.HasPrefix(got, "dev-1 already has a registration record: assigned, hub hub-a, device dev-1") || !strings.Contains(got, tc.want) {
			t.Errorf("policy %+v: %q", tc.policy, got)
		}
	}
}
