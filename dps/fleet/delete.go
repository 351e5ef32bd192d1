package fleet

import (
	"time"

	"github.com/dpsconsole/dpsconsole/dps/cleanup"
)

// ReasonFleetRun is why a fleet run's records are in a deletion plan.
const ReasonFleetRun cleanup.Reason = "fleet-run"

// DeletionPlan is a clean-up plan for the registration records a run made
// (every device DPS ran a registration for, as its log says) and, where
// hubLinked says the assigned hub can be reached, their hub identities.
// It takes the run's lock while it reads, so a run still going is refused.
func DeletionPlan(stateDir string, s Spec, hubLinked func(hub string) bool) (*cleanup.Plan, error) {
	r, err := openRun(stateDir, s)
	if err != nil {
		return nil, err
	}
	defer r.log.Close()
	plan := &cleanup.Plan{Host: s.Host, Scanned: time.Now().UTC(), Findings: []cleanup.Finding{}}
	detail := "registered by fleet run " + s.ID
	for i, l := range r.last {
		if !l.Outcome.final() {
			continue
		}
		id := r.RegistrationID(i)
		f := cleanup.Finding{RegistrationID: id, Reason: ReasonFleetRun, GroupID: s.Group, Detail: detail, Status: string(l.Outcome)}
		if l.Outcome == OutcomeAssigned {
			// A group enrollment's device ID is its registration ID.
			f.DeviceID, f.AssignedHub = id, l.Hub
			f.HubDevice = hubLinked != nil && hubLinked(l.Hub)
		}
		plan.Findings = append(plan.Findings, f)
	}
	return plan, nil
}
