package inventory

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/keys"
)

// pageSize is the page every listing here asks for: the most DPS serves.
const pageSize = 1000

// Counts is the shape of a DPS: what it holds, against Limits.
type Counts struct {
	// Groups are the enrollment groups and their records, largest first;
	// Options.KnownGroups that no longer exist come with Deleted set.
	Groups []GroupCount
	// Enrollments is how many individual enrollments exist; EnrollmentRecords
	// how many of them have a registration record, of the Enrollments minus
	// UnreadEnrollments whose record was looked up (Options.RecordLookups).
	Enrollments, EnrollmentRecords, UnreadEnrollments int
	// Hubs are the IoT hub host names the enrollments name, with
	// Options.KnownHubs: the DPS service API cannot list the linked hubs, so
	// this is a lower bound of them.
	Hubs []string
}

// GroupCount is one group's share.
type GroupCount struct {
	ID          string
	Attestation dps.AttestationType // "" for a deleted group
	Records     int
	Deleted     bool // the group is gone; its records stay until deleted
}

// Used is how much of limit k the counts use.
func (c Counts) Used(k Kind) int {
	switch k {
	case Registrations:
		return c.Records()
	case Enrollments:
		return c.Enrollments
	case X509Groups:
		return c.groupsOf(dps.AttestationX509)
	case SymmetricKeyGroups:
		return c.groupsOf(dps.AttestationSymmetricKey)
	case LinkedHubs:
		return len(c.Hubs)
	}
	return 0
}

// Records is every registration record counted: the groups' and the
// individual enrollments'.
func (c Counts) Records() int {
	n := c.EnrollmentRecords
	for _, g := range c.Groups {
		n += g.Records
	}
	return n
}

func (c Counts) groupsOf(t dps.AttestationType) int {
	n := 0
	for _, g := range c.Groups {
		if !g.Deleted && g.Attestation == t {
			n++
		}
	}
	return n
}

// Options are the optional parts of a count.
type Options struct {
	// KnownGroups are groups to count the records of even when they no longer
	// exist (the console's journal of groups it has seen): DPS keeps a
	// deleted group's records, and they count against the quota.
	KnownGroups []string
	// KnownHubs are hub host names known to be linked (from the hub
	// connection strings), counted with the ones enrollments name.
	KnownHubs []string
	// RecordLookups caps how many individual enrollments have their record
	// read, one request each (the enrollment query does not carry it): 0 is
	// DefaultRecordLookups, -1 none.
	RecordLookups int
}

// DefaultRecordLookups is a minute of DPS's default rate (1,000 operations a
// minute): a count of a DPS with more individual enrollments than that
// reports the rest as unread rather than take hours.
const DefaultRecordLookups = 1000

// Progress is a snapshot of a count under way.
type Progress struct {
	Stage   string // "groups", "records of GROUP", "individual enrollments"
	Records int    // registration records counted so far
	// GroupsDone of Groups have had their records counted.
	GroupsDone, Groups int
}

// Count measures the DPS page by page: the groups, each group's records
// (counted as items in the raw page stream, never decoded, so memory stays
// one page whatever the size), and the individual enrollments and their
// records (up to Options.RecordLookups). progress,
// when not nil, is called after every page from Count's goroutine.
func Count(ctx context.Context, c *dps.Client, opts Options, progress func(Progress)) (Counts, error) {
	c, done := c.Streaming()
	defer done()
	var out Counts
	p := Progress{Stage: "groups"}
	report := func() {
		if progress != nil {
			progress(p)
		}
	}
	report()
	hubs := map[string]bool{}
	for _, h := range opts.KnownHubs {
		hubs[strings.ToLower(h)] = true
	}
	err := eachPage(ctx, c.NewEnrollmentGroupPager(&dps.PagerOptions{PageSize: pageSize}), func(page dps.EnrollmentGroupPage) error {
		for _, g := range page.Items {
			out.Groups = append(out.Groups, GroupCount{ID: g.EnrollmentGroupID, Attestation: g.Attestation.Type})
			addHubs(hubs, g.IoTHubHostName, g.IoTHubs)
		}
		return nil
	})
	if err != nil {
		return out, stepError{"listing the enrollment groups", err}
	}
	out.Groups = appendDeleted(out.Groups, opts.KnownGroups)
	p.Groups = len(out.Groups)
	for i := range out.Groups {
		g := &out.Groups[i]
		p.Stage = "records of " + g.ID
		report()
		err := eachPage(ctx, c.NewRawRegistrationStatePager(g.ID, &dps.PagerOptions{PageSize: pageSize, Prefetch: true}), func(page dps.RawPage) error {
			g.Records += len(page.Items)
			p.Records += len(page.Items)
			report()
			return nil
		})
		if err != nil {
			return out, stepError{fmt.Sprintf("counting the records of group %q", g.ID), err}
		}
		p.GroupsDone++
	}
	p.Stage = "individual enrollments"
	report()
	lookups := cmp.Or(opts.RecordLookups, DefaultRecordLookups)
	err = eachPage(ctx, c.NewRawEnrollmentPager(&dps.PagerOptions{PageSize: pageSize, Prefetch: true}), func(page dps.RawPage) error {
		var ids []string
		for _, item := range page.Items {
			// Only the few fields counted: no keys, no twin, no time parsing.
			var e struct {
				RegistrationID string   `json:"registrationId"`
				IoTHubHostName string   `json:"iotHubHostName"`
				IoTHubs        []string `json:"iotHubs"`
			}
			if err := json.Unmarshal(item, &e); err != nil {
				return fmt.Errorf("an enrollment is not JSON: %w", err)
			}
			out.Enrollments++
			addHubs(hubs, e.IoTHubHostName, e.IoTHubs)
			if lookups > 0 && out.Enrollments <= lookups {
				ids = append(ids, e.RegistrationID)
			} else {
				out.UnreadEnrollments++
			}
		}
		err := eachEnrollmentRecord(ctx, ids, c.GetRawRegistrationState, func(json.RawMessage) error {
			out.EnrollmentRecords++
			p.Records++
			return nil
		})
		report()
		return err
	})
	if err != nil {
		return out, stepError{"counting the individual enrollments", err}
	}
	// A known group that is gone and left no records is not part of the shape.
	out.Groups = slices.DeleteFunc(out.Groups, func(g GroupCount) bool { return g.Deleted && g.Records == 0 })
	slices.SortStableFunc(out.Groups, func(a, b GroupCount) int {
		return cmp.Or(cmp.Compare(b.Records, a.Records), strings.Compare(a.ID, b.ID))
	})
	for h := range hubs {
		out.Hubs = append(out.Hubs, h)
	}
	slices.Sort(out.Hubs)
	return out, nil
}

// appendDeleted adds the known groups the listing did not have.
func appendDeleted(groups []GroupCount, known []string) []GroupCount {
	listed := make(map[string]bool, len(groups))
	for _, g := range groups {
		listed[strings.ToLower(g.ID)] = true // DPS IDs are case-insensitive
	}
	for _, id := range known {
		if !listed[strings.ToLower(id)] {
			listed[strings.ToLower(id)] = true
			groups = append(groups, GroupCount{ID: id, Deleted: true})
		}
	}
	return groups
}

func addHubs(hubs map[string]bool, host string, list []string) {
	for _, h := range append(list, host) {
		if h != "" {
			hubs[strings.ToLower(h)] = true
		}
	}
}

// eachPage hands every page of pager to fn.
func eachPage[P any](ctx context.Context, pager *runtime.Pager[P], fn func(P) error) error {
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return err
		}
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

// stepError says which step of a count or an export failed, in DPS's words
// (dps.ErrorMessage), and keeps the cause for errors.Is.
type stepError struct {
	step string
	err  error
}

func (e stepError) Error() string { return e.step + ": " + dps.ErrorMessage(e.err) }
func (e stepError) Unwrap() error { return e.err }

// KnownGroups are the IDs of the groups journal has seen, for
// Options.KnownGroups; none for a nil journal.
func KnownGroups(j *cleanup.Journal) []string {
	if j == nil {
		return nil
	}
	var ids []string
	for _, g := range j.Groups() {
		ids = append(ids, g.ID)
	}
	return ids
}

// HubHosts are the host names of hub connection strings, for
// Options.KnownHubs; a string that does not parse is left out.
func HubHosts(connectionStrings []string) []string {
	var hosts []string
	for _, cs := range connectionStrings {
		if c, err := keys.ParseServiceConnectionString(cs); err == nil {
			hosts = append(hosts, c.HostName)
		}
	}
	return hosts
}
