package cleanup

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

func scanAndRun(t *testing.T, f *fixture, sel Selection) (*Plan, Summary) {
	t.Helper()
	ctx := context.Background()
	plan, err := f.engine.Scan(ctx, ScanOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	job, err := f.engine.NewJob(plan, sel)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := f.engine.Run(ctx, job, RunOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return plan, sum
}

// Hub devices go only when asked; live groups' records are never touched.
func TestRunDeletesHubDevicesOnlyWhenAsked(t *testing.T) {
	for _, withHub := range []bool{false, true} {
		t.Run(fmt.Sprintf("hub-devices=%v", withHub), func(t *testing.T) {
			f := startFixture(t, emulator.Options{Seed: "demo"})
			fleet := f.records(t, emulator.DemoHashedGroup)
			plan, sum := scanAndRun(t, f, Selection{HubDevices: withHub})
			if got := sum.Outcomes[DeleteRecord][OutcomeDeleted]; got != 12 {
				t.Errorf("records deleted = %d, want 12 (summary %+v)", got, sum)
			}
			wantHub := 0
			if withHub {
				wantHub = 12
			}
			if got := sum.Outcomes[DeleteHubDevice][OutcomeDeleted]; got != wantHub {
				t.Errorf("hub devices deleted = %d, want %d", got, wantHub)
			}
			for _, fd := range plan.Findings {
				if _, err := f.dps.GetRegistrationState(context.Background(), fd.RegistrationID); !dps.IsNotFound(err) {
					t.Errorf("record %s still there (err %v)", fd.RegistrationID, err)
				}
				if has := f.hubHas(t, fd.AssignedHub, fd.DeviceID); has == withHub {
					t.Errorf("hub device %s present = %v with hub-devices = %v", fd.DeviceID, has, withHub)
				}
			}
			if after := f.records(t, emulator.DemoHashedGroup); len(after) != len(fleet) || len(fleet) != 36 {
				t.Errorf("live group %s had %d records, has %d", emulator.DemoHashedGroup, len(fleet), len(after))
			}
			for id := range fleet {
				if !f.hubHas(t, hubOf(t, f, id), id) {
					t.Errorf("live device %s lost its hub identity", id)
				}
			}
		})
	}
}

func hubOf(t *testing.T, f *fixture, regID string) string {
	st, err := f.dps.GetRegistrationState(context.Background(), regID)
	if err != nil {
		t.Fatal(err)
	}
	return st.AssignedHub
}

// Safe group deletion: records (and hub devices) first, then the group; the
// group stays while any of its records does.
func TestDeleteGroupWithRegistrations(t *testing.T) {
	f := startFixture(t, emulator.Options{Seed: "demo"})
	ctx := context.Background()
	group := emulator.DemoHashedGroup
	plan, err := f.engine.PlanGroupDeletion(ctx, group, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Findings) != 36 {
		t.Fatalf("plan has %d records, want 36", len(plan.Findings))
	}
	// One device registers again after the plan: its record changes, the
	// delete (with the old ETag) leaves it alone, and so the group must stay.
	moved := plan.Findings[0]
	changeRecord(t, f, moved.RegistrationID)

	job, err := f.engine.NewJob(plan, Selection{HubDevices: true})
	if err != nil {
		t.Fatal(err)
	}
	acts := job.Actions
	if last := acts[len(acts)-1]; last.Kind != DeleteGroup || last.ID != group {
		t.Fatalf("last action = %+v, want the group", last)
	}
	sum, err := f.engine.Run(ctx, job, RunOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcomes[DeleteRecord][OutcomeDeleted] != 35 || sum.Outcomes[DeleteRecord][OutcomeChanged] != 1 ||
		sum.Outcomes[DeleteHubDevice][OutcomeDeleted] != 35 || sum.Outcomes[DeleteHubDevice][OutcomeChanged] != 1 ||
		sum.Outcomes[DeleteGroup][OutcomeFailed] != 1 {
		t.Errorf("outcomes = %v, want 35 records and their hub devices deleted, 1 of each changed, group failed", sum.Outcomes)
	}
	st, err := f.dps.GetRegistrationState(ctx, moved.RegistrationID)
	if err != nil || !f.hubHas(t, st.AssignedHub, st.DeviceID) {
		t.Errorf("the device that registered again lost its record or hub identity (%v)", err)
	}
	if _, err := f.dps.GetEnrollmentGroup(ctx, group); err != nil {
		t.Errorf("the group was deleted while record %s remained: %v", moved.RegistrationID, err)
	}

	// Second pass: the remaining record, then the group.
	plan, err = f.engine.PlanGroupDeletion(ctx, group, nil)
	if err != nil {
		t.Fatal(err)
	}
	job, err = f.engine.NewJob(plan, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err = f.engine.Run(ctx, job, RunOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if sum.Outcomes[DeleteRecord][OutcomeDeleted] != 1 || sum.Outcomes[DeleteGroup][OutcomeDeleted] != 1 {
		t.Errorf("outcomes = %v, want the last record and then the group", sum.Outcomes)
	}
	if _, err := f.dps.GetEnrollmentGroup(ctx, group); !dps.IsNotFound(err) {
		t.Errorf("group still there: %v", err)
	}
	if n := len(f.records(t, group)); n != 0 {
		t.Errorf("%d records left", n)
	}
	// Deletion order on the wire: the group's DELETE came after every record's.
	dels := f.wire.deletes()
	if last := dels[len(dels)-1]; last.status != http.StatusNoContent || last.path != "/enrollmentGroups/"+group {
		t.Errorf("last delete was %s, answered %d; want the group's, 204", last.path, last.status)
	}
	j, err := OpenJournal(f.engine.StateDir, f.dps.Host())
	if err != nil {
		t.Fatal(err)
	}
	marked := false
	for _, g := range j.Groups() {
		marked = marked || (g.ID == group && !g.Deleted.IsZero())
	}
	if !marked {
		t.Error("the journal does not record the group as deleted")
	}
}

// changeRecord has the device register again (through the real device
// API), which gives its record a new ETag.
func changeRecord(t *testing.T, f *fixture, regID string) {
	t.Helper()
	ctx := context.Background()
	att, err := f.dps.GetEnrollmentGroupAttestation(ctx, emulator.DemoHashedGroup)
	if err != nil {
		t.Fatal(err)
	}
	groupKey, err := keys.ParseKey(att.SymmetricKey.PrimaryKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	deviceKey, err := keys.DeriveDeviceKey(groupKey, regID)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := dps.NewTransport(f.emu.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	env := f.emu.Env()
	dc, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr}, ProvisioningHost: env.DeviceEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	poller, err := dc.BeginRegister(ctx, regID, deviceKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 10 * time.Millisecond}); err != nil {
		t.Fatalf("register %s again: %v", regID, err)
	}
}
