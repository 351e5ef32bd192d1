package cleanup

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Reason says why a registration record is a finding.
type Reason string

const (
	// ReasonGroupDeleted: the journal knows the group, and it no longer exists.
	ReasonGroupDeleted Reason = "group-deleted"
	// ReasonGivenGroup: the operator named the group, and it does not exist.
	ReasonGivenGroup Reason = "given-group"
	// ReasonNoEnrollment: a linked hub has the device, and its record is
	// reached by no live enrollment group or individual enrollment.
	ReasonNoEnrollment Reason = "no-enrollment"
	// ReasonGroupDeletion: the record's group is being deleted with its
	// records (groups delete --with-registrations).
	ReasonGroupDeletion Reason = "group-deletion"
	// ReasonStale: the record belongs to a live enrollment, but the hub it
	// assigned the device to no longer has the device. Deleted only when asked.
	ReasonStale Reason = "stale"
	// ReasonUnregistered: the other direction: a linked hub has a device
	// with no registration record at all (created outside DPS, or its
	// record was deleted). Deleted only when asked for by its own switch.
	ReasonUnregistered Reason = "unregistered-device"
)

// Finding is one registration record cleanup would delete, and why.
type Finding struct {
	RegistrationID string `json:"registrationId"`
	Reason         Reason `json:"reason"`
	// GroupID is the group whose listing holds the record: the deleted one
	// for group-deleted and given-group, the live one for stale; "" when no
	// group can be told (a record does not name its group).
	GroupID     string `json:"groupId,omitempty"`
	Detail      string `json:"detail"`
	DeviceID    string `json:"deviceId,omitempty"`
	AssignedHub string `json:"assignedHub,omitempty"`
	Status      string `json:"status,omitempty"`
	ETag        string `json:"etag,omitempty"`
	// HubDevice: the assigned hub is linked here and still has the device
	// identity, so --hub-devices would delete it too.
	HubDevice bool `json:"hubDevice"`
}

// Plan is the result of a scan: every finding, and notes on what could not
// be looked at.
type Plan struct {
	Host     string    `json:"host"`
	Scanned  time.Time `json:"scanned"`
	Findings []Finding `json:"findings"`
	// Notes are things the operator should know, e.g. a given group id that
	// turned out to be live, or a hub whose registry could not be read.
	Notes []string `json:"notes,omitempty"`
	// DeleteGroups are groups to delete after their records (safe group
	// deletion); empty for an orphan cleanup.
	DeleteGroups []GroupRef `json:"deleteGroups,omitempty"`
	// Unregistered are hub devices that have no registration record: not
	// records, so not Findings, and never deleted by HubDevices.
	Unregistered []UnregisteredDevice `json:"unregisteredDevices,omitempty"`
}

// UnregisteredDevice is a device identity on a linked hub that DPS has no
// registration record of.
type UnregisteredDevice struct {
	DeviceID string `json:"deviceId"`
	Hub      string `json:"hub"`
	// ETag is the identity's as scanned: a device changed since (say, it
	// was provisioned meanwhile) is not deleted.
	ETag   string `json:"etag,omitempty"`
	Detail string `json:"detail"`
}

// HubCount is how many unregistered devices one hub has.
type HubCount struct {
	Hub     string `json:"hub"`
	Devices int    `json:"devices"`
}

// UnregisteredCounts totals the unregistered devices per hub, by hub name.
func (p *Plan) UnregisteredCounts() []HubCount {
	idx := map[string]int{}
	var out []HubCount
	for _, d := range p.Unregistered {
		k := strings.ToLower(d.Hub)
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, HubCount{Hub: d.Hub})
		}
		out[i].Devices++
	}
	slices.SortFunc(out, func(a, b HubCount) int { return strings.Compare(a.Hub, b.Hub) })
	return out
}

// GroupRef names a group and the ETag it had when the plan was made.
type GroupRef struct {
	ID   string `json:"id"`
	ETag string `json:"etag,omitempty"`
}

// Selection chooses what of a plan is deleted.
type Selection struct {
	HubDevices   bool // also delete the hub device identities of deleted records
	IncludeStale bool // also delete stale records of live enrollments
	// UnregisteredDevices also deletes the hub devices that have no
	// registration record (Plan.Unregistered).
	UnregisteredDevices bool `json:",omitempty"`
}

// Selected reports whether f is deleted under s.
func (s Selection) Selected(f Finding) bool { return f.Reason != ReasonStale || s.IncludeStale }

// Count is how many findings share a reason and group, and what of them the
// selection deletes.
type Count struct {
	Reason     Reason `json:"reason"`
	GroupID    string `json:"groupId,omitempty"`
	Records    int    `json:"records"`
	HubDevices int    `json:"hubDevices"` // identities on linked hubs
	Selected   bool   `json:"selected"`   // whether the selection deletes these
}

// Counts totals the findings per reason and group, in a stable order.
func (p *Plan) Counts(sel Selection) []Count {
	type key struct {
		r Reason
		g string
	}
	idx := map[key]int{}
	var out []Count
	for _, f := range p.Findings {
		k := key{f.Reason, f.GroupID}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, Count{Reason: f.Reason, GroupID: f.GroupID, Selected: sel.Selected(f)})
		}
		out[i].Records++
		if f.HubDevice {
			out[i].HubDevices++
		}
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(reasonOrder(a.Reason), reasonOrder(b.Reason)), strings.Compare(a.GroupID, b.GroupID))
	})
	return out
}

func reasonOrder(r Reason) int {
	return slices.Index([]Reason{ReasonGroupDeletion, ReasonGroupDeleted, ReasonGivenGroup, ReasonNoEnrollment, ReasonStale}, r)
}

// ActionKind is what an action deletes.
type ActionKind string

const (
	DeleteRecord    ActionKind = "record"     // a DPS registration record
	DeleteHubDevice ActionKind = "hub-device" // a device identity on a linked hub
	DeleteGroup     ActionKind = "group"      // an enrollment group, after its records
)

// Action is one delete of a job.
type Action struct {
	Kind ActionKind `json:"kind"`
	ID   string     `json:"id"`
	// Hub is the hub host of a hub-device action, and Record the
	// registration id whose deletion it waits for.
	Hub    string `json:"hub,omitempty"`
	Record string `json:"record,omitempty"`
	// ETag makes a record or group delete conditional: a record that changed
	// since the scan (say, the device registered again) is left alone.
	ETag    string `json:"etag,omitempty"`
	Reason  Reason `json:"reason,omitempty"`
	GroupID string `json:"groupId,omitempty"`
}

// Actions lists the deletes the selection asks for: each selected record,
// and its hub device identity when asked, then the groups to delete.
func (p *Plan) Actions(sel Selection) []Action {
	var out []Action
	for _, f := range p.Findings {
		if !sel.Selected(f) {
			continue
		}
		out = append(out, Action{Kind: DeleteRecord, ID: f.RegistrationID, ETag: f.ETag, Reason: f.Reason, GroupID: f.GroupID})
		if sel.HubDevices && f.HubDevice {
			out = append(out, Action{Kind: DeleteHubDevice, ID: f.DeviceID, Hub: f.AssignedHub, Record: f.RegistrationID, Reason: f.Reason, GroupID: f.GroupID})
		}
	}
	if sel.UnregisteredDevices {
		for _, d := range p.Unregistered {
			out = append(out, Action{Kind: DeleteHubDevice, ID: d.DeviceID, Hub: d.Hub, ETag: d.ETag, Reason: ReasonUnregistered})
		}
	}
	for _, g := range p.DeleteGroups {
		out = append(out, Action{Kind: DeleteGroup, ID: g.ID, ETag: g.ETag, Reason: ReasonGroupDeletion})
	}
	return out
}
