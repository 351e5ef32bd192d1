package cleanup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
)

// ScanOptions are the operator's extra hints for a scan.
type ScanOptions struct {
	// GroupIDs are groups the operator knows were deleted (--group-id,
	// --group-ids-file); their records are findings like the journal's.
	GroupIDs []string
}

// ScanProgress is a running count of what one scan source has read.
type ScanProgress struct {
	Source string // Source* below
	Count  int
	Done   bool
}

// Scan sources.
const (
	SourceGroups      = "live groups"
	SourceEnrollments = "individual enrollments"
	SourceLiveRecords = "records of live groups"
	SourceHubDevices  = "hub devices"
	SourceJournal     = "records of deleted groups"
	SourceLookups     = "hub devices looked up"
)

const pageSize = 1000

// lookupWorkers bounds the GET /registrations/{id} lookups of hub devices.
const lookupWorkers = 8

// record is what the scan keeps of a live registration record.
type record struct {
	regID, deviceID, hub, status string
	group                        string // "" for an individual enrollment
	etag                         string
}

// Scan finds orphaned and stale registration records. How, given that a
// record names no group and DPS lists records only per group:
//
//  1. It lists the live groups, their records, and the individual
//     enrollments: that is everything live enrollments reach. One page
//     brings up to 1,000 records, so this costs far fewer operations (DPS
//     throttles on operations) than a lookup per device would.
//  2. (a, b) Groups from the known-groups journal and from the operator that
//     no longer exist: DPS still lists their records, and each one not
//     reached by a live enrollment (the device may have moved) is an orphan
//     of that group.
//  3. (c) Device ids in the linked hubs' registries that no live enrollment
//     reaches and step 2 did not explain are looked up one by one with
//     GET /registrations/{id}; a record that exists is an orphan whose group
//     cannot be told (a deleted group nobody recorded); a 404 means the
//     hub has a device DPS has no record of at all, the other direction of
//     the reconciliation (Plan.Unregistered).
//  4. (d) Live records whose assigned hub is linked here but no longer has
//     the device are stale.
//
// Live group ids are added to the journal as a side effect.
func (e *Engine) Scan(ctx context.Context, opts ScanOptions, events chan<- Event) (*Plan, error) {
	journal, err := OpenJournal(e.StateDir, e.DPS.Host())
	if err != nil {
		return nil, err
	}
	if err := e.reach(ctx); err != nil {
		return nil, err
	}
	plan := &Plan{Host: e.DPS.Host(), Scanned: time.Now().UTC(), Findings: []Finding{}}
	if len(e.Hubs) == 0 {
		plan.Notes = append(plan.Notes, NoHubsNote)
	}
	s := &scan{e: e, events: events, plan: plan, found: map[string]bool{}}

	live, err := s.liveGroups(ctx)
	if err != nil {
		return nil, err
	}
	if err := journal.Seen(live...); err != nil {
		return nil, err
	}
	if err := s.liveRecords(ctx, live); err != nil {
		return nil, err
	}
	if err := s.hubDevices(ctx); err != nil {
		return nil, err
	}

	// (a) and (b): groups that are gone. Group ids are case-insensitive.
	isLive := map[string]bool{}
	for _, id := range live {
		isLive[strings.ToLower(id)] = true
	}
	var gone []string
	reason := map[string]Reason{}
	for _, g := range journal.Groups() {
		if k := strings.ToLower(g.ID); !isLive[k] && reason[k] == "" {
			gone = append(gone, g.ID)
			reason[k] = ReasonGroupDeleted
		}
	}
	for _, id := range opts.GroupIDs {
		switch k := strings.ToLower(id); {
		case isLive[k]:
			plan.Notes = append(plan.Notes, fmt.Sprintf("group %q exists, so its records are not orphans; to remove it with its records use `groups delete %s --with-registrations`", id, id))
		case reason[k] == "":
			gone = append(gone, id)
			reason[k] = ReasonGivenGroup
		}
	}
	for _, id := range gone {
		if err := s.goneGroup(ctx, id, reason[strings.ToLower(id)]); err != nil {
			return nil, err
		}
	}
	send(ctx, events, ScanProgress{Source: SourceJournal, Count: s.goneCount, Done: true})

	// (c) hub devices nobody reaches.
	if err := s.lookUpHubDevices(ctx); err != nil {
		return nil, err
	}
	// (d) stale live records.
	s.stale()
	slices.SortFunc(plan.Unregistered, func(a, b UnregisteredDevice) int {
		return cmp.Or(strings.Compare(a.Hub, b.Hub), strings.Compare(a.DeviceID, b.DeviceID))
	})
	return plan, nil
}

// NoHubsNote is the plan's note when no hub registry can be read.
const NoHubsNote = "no IoT Hub connection strings, so hub-based detection was skipped (orphans of groups nobody recorded, stale records); " +
	"to enable it set IOTHUB_CONNECTION_STRING (and IOTHUB_CONNECTION_STRING_1, _2, … for more hubs) to each linked hub's service connection string"

// reachTimeout bounds the first request of a scan: an unreachable or
// stalled DPS is reported at once rather than after the client's retries.
var reachTimeout = 5 * time.Second

// reachRetryPause spaces the probe's tries after a dropped request.
const reachRetryPause = 100 * time.Millisecond

// reach tells an unreachable target from a slow scan, within reachTimeout
// and without the client's retries. Any HTTP answer will do: the scan itself
// reports a 401 or a 429 in full. A refused connection or no answer ends it
// at once; a dropped request (a reset HTTP/2 stream) is a fault of a DPS
// that is there, so the probe tries again while time is left.
func (e *Engine) reach(ctx context.Context) error {
	deadline := time.Now().Add(reachTimeout)
	for {
		err := Attempt(ctx, time.Until(deadline), func(ctx context.Context) error {
			_, err := e.DPS.NewEnrollmentGroupPager(&dps.PagerOptions{PageSize: 1}).NextPage(ctx)
			return err
		})
		switch {
		case Answered(err):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			err = op // "dial tcp …: connection refused", without the request around it
		} else if time.Until(deadline) > reachRetryPause {
			sleep(ctx, reachRetryPause)
			continue
		}
		return fmt.Errorf("DPS %s is not reachable: %s. Check that it is running and reachable from here "+
			"(a standalone emulator: that `dpsconsole emulator` still runs; Azure: the network, proxy and DPS_CONNECTION_STRING's HostName)",
			e.DPS.Host(), dps.ErrorMessage(err))
	}
}

// hubDevice is what the scan keeps of a hub's device identity.
type hubDevice struct{ id, etag string }

type scan struct {
	e      *Engine
	events chan<- Event
	plan   *Plan

	reached   map[string]bool // lower-cased registration and device ids live enrollments reach
	liveRecs  []record
	hubDevs   map[string]map[string]hubDevice // lower-cased hub host → lower-cased device id → the device
	found     map[string]bool                 // lower-cased registration ids already findings
	goneCount int
}

func (s *scan) liveGroups(ctx context.Context) ([]string, error) {
	var ids []string
	pager := s.e.DPS.NewEnrollmentGroupPager(&dps.PagerOptions{PageSize: pageSize})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list enrollment groups: %s", dps.ErrorMessage(err))
		}
		for _, g := range page.Items {
			ids = append(ids, g.EnrollmentGroupID)
		}
		send(ctx, s.events, ScanProgress{Source: SourceGroups, Count: len(ids)})
	}
	send(ctx, s.events, ScanProgress{Source: SourceGroups, Count: len(ids), Done: true})
	return ids, nil
}

// liveRecords reads everything live enrollments reach.
func (s *scan) liveRecords(ctx context.Context, groups []string) error {
	s.reached = map[string]bool{}
	reach := func(r record) {
		s.reached[strings.ToLower(r.regID)] = true
		if r.deviceID != "" {
			s.reached[strings.ToLower(r.deviceID)] = true
		}
		s.liveRecs = append(s.liveRecs, r)
	}
	n := 0
	pager := s.e.DPS.NewEnrollmentPager(&dps.PagerOptions{PageSize: pageSize})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list individual enrollments: %s", dps.ErrorMessage(err))
		}
		for _, en := range page.Items {
			r := record{regID: en.RegistrationID, deviceID: en.DeviceID}
			if st := en.RegistrationState; st != nil {
				r.deviceID, r.hub, r.status, r.etag = cmp.Or(st.DeviceID, en.DeviceID), st.AssignedHub, string(st.Status), st.ETag
			}
			reach(r)
		}
		n += len(page.Items)
		send(ctx, s.events, ScanProgress{Source: SourceEnrollments, Count: n})
	}
	send(ctx, s.events, ScanProgress{Source: SourceEnrollments, Count: n, Done: true})

	n = 0
	for _, g := range groups {
		err := s.groupRecords(ctx, g, func(st dps.DeviceRegistrationState) {
			reach(record{regID: st.RegistrationID, deviceID: st.DeviceID, hub: st.AssignedHub, status: string(st.Status), group: g, etag: st.ETag})
			n++
		})
		if err != nil {
			return err
		}
		send(ctx, s.events, ScanProgress{Source: SourceLiveRecords, Count: n})
	}
	send(ctx, s.events, ScanProgress{Source: SourceLiveRecords, Count: n, Done: true})
	return nil
}

func (s *scan) groupRecords(ctx context.Context, group string, each func(dps.DeviceRegistrationState)) error {
	pager := s.e.DPS.NewRegistrationStatePager(group, &dps.PagerOptions{PageSize: pageSize})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list the registration records of group %q: %s", group, dps.ErrorMessage(err))
		}
		for _, st := range page.Items {
			each(st)
		}
	}
	return nil
}

// hubDevices reads the registry of every linked hub. A hub that cannot be
// read is noted and left out, so its devices are neither looked up nor
// judged stale.
func (s *scan) hubDevices(ctx context.Context) error {
	s.hubDevs = map[string]map[string]hubDevice{}
	n := 0
	for _, h := range s.e.Hubs {
		ids := map[string]hubDevice{}
		pager := h.NewDevicePager(&hub.PagerOptions{PageSize: pageSize})
		var err error
		for pager.More() {
			var page hub.DevicePage
			if page, err = pager.NextPage(ctx); err != nil {
				break
			}
			for _, d := range page.Items {
				ids[strings.ToLower(d.DeviceID)] = hubDevice{d.DeviceID, d.DeviceETag} // a twin's etag is not the identity's
			}
			n += len(page.Items)
			send(ctx, s.events, ScanProgress{Source: SourceHubDevices, Count: n})
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.plan.Notes = append(s.plan.Notes, fmt.Sprintf("hub %s: could not list its devices, so its devices were not checked: %v", h.Host(), err))
			continue
		}
		s.hubDevs[strings.ToLower(h.Host())] = ids
	}
	send(ctx, s.events, ScanProgress{Source: SourceHubDevices, Count: n, Done: true})
	return nil
}

// hasHubDevice reports whether hubHost is a readable linked hub holding deviceID.
func (s *scan) hasHubDevice(hubHost, deviceID string) bool {
	_, ok := s.hubDevs[strings.ToLower(hubHost)][strings.ToLower(deviceID)]
	return ok
}

func (s *scan) add(f Finding) {
	s.found[strings.ToLower(f.RegistrationID)] = true
	f.HubDevice = f.DeviceID != "" && s.hasHubDevice(f.AssignedHub, f.DeviceID)
	s.plan.Findings = append(s.plan.Findings, f)
}

func (s *scan) goneGroup(ctx context.Context, group string, why Reason) error {
	detail := fmt.Sprintf("group %q no longer exists", group)
	if why == ReasonGivenGroup {
		detail = fmt.Sprintf("group %q (given by the operator) does not exist", group)
	}
	return s.groupRecords(ctx, group, func(st dps.DeviceRegistrationState) {
		id := strings.ToLower(st.RegistrationID)
		if s.reached[id] || s.found[id] {
			return // the device is live elsewhere now, or already counted
		}
		s.add(Finding{RegistrationID: st.RegistrationID, Reason: why, GroupID: group, Detail: detail,
			DeviceID: st.DeviceID, AssignedHub: st.AssignedHub, Status: string(st.Status), ETag: st.ETag})
		s.goneCount++
		if s.goneCount%pageSize == 0 {
			send(ctx, s.events, ScanProgress{Source: SourceJournal, Count: s.goneCount})
		}
	})
}

// lookUpHubDevices is step (c): GET /registrations/{id} for each hub device
// no live enrollment reaches.
func (s *scan) lookUpHubDevices(ctx context.Context) error {
	type candidate struct {
		hub, id string
		dev     hubDevice
	}
	var cands []candidate
	for _, h := range s.e.Hubs {
		for id, d := range s.hubDevs[strings.ToLower(h.Host())] {
			if !s.reached[id] && !s.found[id] {
				cands = append(cands, candidate{h.Host(), id, d})
			}
		}
	}
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		next     = make(chan candidate)
		wg       sync.WaitGroup
	)
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(lookupWorkers, len(cands)) {
		wg.Go(func() {
			for c := range next {
				st, err := s.e.DPS.GetRegistrationState(ctx, c.id)
				mu.Lock()
				done++
				switch {
				case dps.IsNotFound(err):
					// The other direction: a device DPS has no record of.
					s.plan.Unregistered = append(s.plan.Unregistered, UnregisteredDevice{DeviceID: c.dev.id, Hub: c.hub, ETag: c.dev.etag,
						Detail: fmt.Sprintf("hub %s has device %q, and DPS has no registration record of it (created outside DPS, or its record was deleted)", c.hub, c.dev.id)})
				case err != nil:
					if firstErr == nil {
						firstErr = fmt.Errorf("look up registration %q: %s", c.id, dps.ErrorMessage(err))
						cancel()
					}
				case !s.found[strings.ToLower(st.RegistrationID)]:
					s.add(Finding{RegistrationID: st.RegistrationID, Reason: ReasonNoEnrollment,
						Detail:   fmt.Sprintf("hub %s has the device, and no live group or individual enrollment reaches its record", c.hub),
						DeviceID: st.DeviceID, AssignedHub: st.AssignedHub, Status: string(st.Status), ETag: st.ETag})
				}
				if done%100 == 0 {
					send(ctx, s.events, ScanProgress{Source: SourceLookups, Count: done})
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, c := range cands {
		select {
		case next <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := parent.Err(); err != nil {
		return err
	}
	send(ctx, s.events, ScanProgress{Source: SourceLookups, Count: done, Done: true})
	return nil
}

// stale is step (d).
func (s *scan) stale() {
	for _, r := range s.liveRecs {
		if r.status != string(dps.StatusAssigned) || r.deviceID == "" || s.found[strings.ToLower(r.regID)] {
			continue
		}
		if _, readable := s.hubDevs[strings.ToLower(r.hub)]; !readable || s.hasHubDevice(r.hub, r.deviceID) {
			continue
		}
		owner := "an individual enrollment"
		if r.group != "" {
			owner = fmt.Sprintf("live group %q", r.group)
		}
		s.add(Finding{RegistrationID: r.regID, Reason: ReasonStale, GroupID: r.group,
			Detail:   fmt.Sprintf("record of %s, but its assigned hub %s no longer has device %q", owner, r.hub, r.deviceID),
			DeviceID: r.deviceID, AssignedHub: r.hub, Status: r.status, ETag: r.etag})
	}
}
