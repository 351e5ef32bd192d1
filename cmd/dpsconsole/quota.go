package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/dps/inventory"
)

func newQuotaCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Count what the DPS holds against its documented limits",
		Long: `Count the registration records, enrollment groups, individual enrollments
and linked hubs of the DPS against the limits Azure documents, and each
group's records, largest first. Records are counted page by page without
being decoded; a DPS near 1,000,000 records takes some seconds (progress on
stderr).

The DPS service API cannot list linked hubs: the hubs counted are those the
enrollments name and those of the hub connection strings, a lower bound.
Nor can it list every registration record: records are counted through the
groups (live ones, and deleted ones dpsconsole has seen) and the individual
enrollments, so the records of a group deleted before dpsconsole first saw it
are not in the count (clean-up finds them through the hubs).
Individual enrollments' records take one request each (the enrollment query
leaves them out); past 1,000 enrollments the rest are reported as unread.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return a.withTarget(cmd.Context(), func(t *target) error {
				progress := newCountLine(a.err)
				counts, err := inventory.Count(cmd.Context(), t.client, inventory.Options{KnownGroups: a.knownGroups(t), KnownHubs: inventory.HubHosts(t.hubConnectionStrings)},
					func(p inventory.Progress) {
						progress.show(fmt.Sprintf("counting %s: %d records so far, %d of %d groups done", p.Stage, p.Records, p.GroupsDone, p.Groups))
					})
				progress.done()
				if err != nil {
					return err
				}
				if output == outputJSON {
					return writeJSON(a.out, quotaReport(counts))
				}
				printQuota(a.out, counts)
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// knownGroups are the groups the known-groups journal has seen: counting
// and exporting read their records too, since a deleted group's records stay.
func (a *app) knownGroups(t *target) []string {
	j, err := cleanup.OpenJournal(a.stateDir, t.client.Host())
	if err != nil {
		fmt.Fprintf(a.err, "warning: known-groups journal: %v (records of groups deleted elsewhere are left out)\n", err)
	}
	return inventory.KnownGroups(j)
}

// quotaJSON is the --output json document of quota.
type quotaJSON struct {
	Limits      []limitUse    `json:"limits"`
	Groups      []groupUse    `json:"groups"`
	Enrollments enrollmentUse `json:"individualEnrollments"`
	Hubs        []string      `json:"hubs"`
	Source      string        `json:"limitsSource"`
}

type limitUse struct {
	Resource   string `json:"resource"`
	Used       int    `json:"used"`
	Limit      int    `json:"limit"`
	Adjustable bool   `json:"adjustable"`
}

type groupUse struct {
	ID          string              `json:"enrollmentGroupId"`
	Attestation dps.AttestationType `json:"attestation,omitempty"`
	Records     int                 `json:"records"`
	Deleted     bool                `json:"deleted,omitempty"`
}

type enrollmentUse struct {
	Count      int `json:"count"`
	WithRecord int `json:"withRecord"`
	Unread     int `json:"unread,omitempty"`
}

func quotaReport(c inventory.Counts) quotaJSON {
	r := quotaJSON{Enrollments: enrollmentUse{c.Enrollments, c.EnrollmentRecords, c.UnreadEnrollments}, Hubs: c.Hubs, Source: inventory.LimitsSource,
		Groups: []groupUse{}}
	if r.Hubs == nil {
		r.Hubs = []string{}
	}
	for k, l := range inventory.Limits {
		r.Limits = append(r.Limits, limitUse{l.Resource, c.Used(inventory.Kind(k)), l.Max, l.Adjustable})
	}
	for _, g := range c.Groups {
		r.Groups = append(r.Groups, groupUse(g))
	}
	return r
}

var quotaColumns = []column{{"LIMIT", 38}, {"USED", 9}, {"OF", 9}, {"USE", 6}, {"ADJUSTABLE", 0}}

func printQuota(w io.Writer, c inventory.Counts) {
	tw := newTable(w, quotaColumns...)
	for k, l := range inventory.Limits {
		used := c.Used(inventory.Kind(k))
		tw.row(l.Resource, strconv.Itoa(used), strconv.Itoa(l.Max), fmt.Sprintf("%.1f%%", 100*float64(used)/float64(l.Max)), boolCell(l.Adjustable))
	}
	fmt.Fprintf(w, "\nLimits from %s.\n", inventory.LimitsSource)
	fmt.Fprintf(w, "Linked hubs counted: those the enrollments name and the hub connection strings give (%d); the service API cannot list them.\n", len(c.Hubs))
	fmt.Fprintln(w, "Registration records counted through the groups and enrollments: a group deleted before dpsconsole saw it leaves records no listing reaches (clean-up finds them through the hubs).")
	if c.UnreadEnrollments > 0 {
		fmt.Fprintf(w, "The records of %d individual enrollments were not read (one request each); the registrations count leaves them out.\n", c.UnreadEnrollments)
	}
	fmt.Fprintln(w)
	gw := newTable(w, column{"GROUP ID", 32}, column{"ATTESTATION", 14}, column{"RECORDS", 0})
	for _, g := range c.Groups {
		att := string(g.Attestation)
		if g.Deleted {
			att = "(deleted)"
		}
		gw.row(g.ID, att, strconv.Itoa(g.Records))
	}
	gw.row("(individual enrollments)", "", strconv.Itoa(c.EnrollmentRecords))
}
