package cleanup

import (
	"context"
	"fmt"

	"github.com/dpsconsole/dpsconsole/dps"
)

// PlanGroupDeletion plans the safe deletion of a live group: every record
// DPS lists for it (with its hub device identity, when the assigned hub is
// linked here), then the group itself, conditional on the ETag it has now.
// Deleting the group alone would leave its records behind as orphans.
func (e *Engine) PlanGroupDeletion(ctx context.Context, groupID string, events chan<- Event) (*Plan, error) {
	g, err := e.DPS.GetEnrollmentGroup(ctx, groupID)
	if dps.IsNotFound(err) {
		return nil, fmt.Errorf("enrollment group %q does not exist; if it was deleted, \"cleanup --group-id %s\" deletes the registration records it left", groupID, groupID)
	}
	if err != nil {
		return nil, fmt.Errorf("read enrollment group %q: %s", groupID, dps.ErrorMessage(err))
	}
	plan := &Plan{Host: e.DPS.Host(), Findings: []Finding{}, DeleteGroups: []GroupRef{{ID: g.EnrollmentGroupID, ETag: g.ETag}}}
	s := &scan{e: e, events: events, plan: plan}
	detail := fmt.Sprintf("group %q is being deleted", g.EnrollmentGroupID)
	err = s.groupRecords(ctx, g.EnrollmentGroupID, func(st dps.DeviceRegistrationState) {
		plan.Findings = append(plan.Findings, Finding{RegistrationID: st.RegistrationID, Reason: ReasonGroupDeletion,
			GroupID: g.EnrollmentGroupID, Detail: detail, DeviceID: st.DeviceID, AssignedHub: st.AssignedHub,
			Status: string(st.Status), ETag: st.ETag,
			// Whether the hub still has it is found out by deleting (404 counts as done).
			HubDevice: st.DeviceID != "" && e.hub(st.AssignedHub) != nil})
		if len(plan.Findings)%pageSize == 0 {
			send(ctx, events, ScanProgress{Source: SourceLiveRecords, Count: len(plan.Findings)})
		}
	})
	if err != nil {
		return nil, err
	}
	send(ctx, events, ScanProgress{Source: SourceLiveRecords, Count: len(plan.Findings), Done: true})
	return plan, nil
}
