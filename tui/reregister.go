package tui

import (
	"context"
	"fmt"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
)

// existingRecord is what the target already has for an ID about to be
// simulated: registering it again is not a demo, it acts on that device.
type existingRecord struct {
	record  dps.DeviceRegistrationState
	groupID string                 // the group named in the form, "" when a key was pasted
	policy  *dps.ReprovisionPolicy // that group's; nil when it has none or no group was named
}

// findExisting reads the record of regID: nil when there is none.
func findExisting(ctx context.Context, svc *dps.Client, groupID, regID string) (*existingRecord, error) {
	r, err := svc.GetRegistrationState(ctx, regID)
	if dps.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checking for a registration record of %s: %w", regID, err)
	}
	e := &existingRecord{record: r, groupID: groupID}
	if groupID != "" {
		g, err := svc.GetEnrollmentGroup(ctx, groupID)
		if err != nil {
			return nil, fmt.Errorf("reading the reprovision policy of group %s: %w", groupID, err)
		}
		e.policy = g.ReprovisionPolicy
	}
	return e, nil
}

// reRegisterWarning says what registering the ID again does to its device,
// under the reprovision policy (dps-protocol.md §6.2).
func reRegisterWarning(e *existingRecord) string {
	r := e.record
	text := fmt.Sprintf("%s already has a registration record: %s, hub %s, device %s, updated %s.\n",
		r.RegistrationID, r.Status, orDash(r.AssignedHub), orDash(r.DeviceID), stamp(r.LastUpdatedDateTimeUTC))
	dev := "device " + orDash(r.DeviceID) + " on " + orDash(r.AssignedHub)
	p := e.policy
	switch {
	case e.groupID == "":
		return text + "Registering it again applies the reprovision policy of the enrollment that admits it: " +
			dev + " may move to another hub, with its twin migrated or reset."
	case p == nil:
		text += "Group " + e.groupID + " sets no reprovision policy, so DPS reprovisions and migrates data: "
	case p.UpdateHubAssignment && p.MigrateDeviceData:
		text += "Under group " + e.groupID + "'s policy (reprovision and migrate data) "
	case p.UpdateHubAssignment:
		return text + "Under group " + e.groupID + "'s policy (reprovision and reset to initial config) DPS re-evaluates the hub: if it changes, " +
			dev + " is removed there and starts on the new hub with the group's initial twin; the twin may be reset even on the same hub."
	default:
		return text + "Under group " + e.groupID + "'s policy (never reprovision) " + dev + " stays where it is; its record is updated."
	}
	return text + "DPS re-evaluates the hub: if it changes, " + dev + " is removed there and moved, twin included, to the new hub."
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// askReRegister holds a registration of an existing ID until the operator
// says yes; start runs it.
func askReRegister(e *existingRecord, start func() tea.Cmd) *confirm.Dialog {
	return &confirm.Dialog{Text: reRegisterWarning(e), Choices: []confirm.Choice{{Key: "y", Label: "register " + e.record.RegistrationID + " again", Run: start}}}
}
