package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps/cleanup"
)

type cleanupCmd struct {
	a            *app
	dryRun       bool
	groupIDs     []string
	groupIDsFile string
	hubDevices   bool
	includeStale bool
	// deleteUnregistered also deletes hub devices that have no registration
	// record: devices someone may have made on purpose, so it is its own flag.
	deleteUnregistered bool
	yes                bool
	resume             string
	concurrency        int
	output             string
}

func newCleanupCmd(a *app) *cobra.Command {
	c := &cleanupCmd{a: a}
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Find and delete orphaned registration records",
		Long: `cleanup finds registration records that no live enrollment reaches any more
and deletes them. Deleting an enrollment group leaves its devices' records
behind, and they keep counting against the DPS registration quota.

Orphans are found from the known-groups journal (groups this console has seen
that no longer exist), from --group-id / --group-ids-file, and from the linked
hubs' device registries (hub connection strings from $IOTHUB_CONNECTION_STRING*,
automatic on the embedded emulator). Records whose assigned hub no longer has
the device are shown as stale and deleted only with --include-stale.

The other direction is reported too: hub devices that have no registration
record at all (created outside DPS, or whose record was deleted), per hub.
They are deleted only with --delete-unregistered-devices.

The plan is printed first, and nothing is deleted without confirmation (or
--yes). Deletes adapt to DPS throttling; every outcome is logged to disk, so an
interrupted run continues with --resume JOB.`,
		Example: `  dpsconsole cleanup --dry-run
  dpsconsole cleanup --group-id old-fleet --hub-devices --yes
  dpsconsole cleanup --resume 20261122-203256-a1b2c3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.check(); err != nil {
				return err
			}
			return a.withTarget(cmd.Context(), func(t *target) error { return c.run(cmd.Context(), t) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&c.dryRun, "dry-run", false, "print the plan and what would be deleted; delete nothing")
	f.StringArrayVar(&c.groupIDs, "group-id", nil, "deleted enrollment group whose records are orphans, by ID (repeatable)")
	f.StringVar(&c.groupIDsFile, "group-ids-file", "", "file of deleted group IDs, one a line (# comments)")
	f.BoolVar(&c.hubDevices, "hub-devices", false, "also delete the orphans' device identities in the linked hubs")
	f.BoolVar(&c.includeStale, "include-stale", false, "also delete stale records (their assigned hub no longer has the device)")
	f.BoolVar(&c.deleteUnregistered, "delete-unregistered-devices", false, "also delete the hub devices that have no registration record at all (created outside DPS, or whose record was deleted)")
	f.BoolVarP(&c.yes, "yes", "y", false, "do not ask before deleting")
	f.StringVar(&c.resume, "resume", "", "continue the interrupted job JOB (the id printed when it started)")
	f.IntVar(&c.concurrency, "concurrency", cleanup.DefaultConcurrency, "most requests in flight at once (lowered automatically while DPS throttles)")
	addOutputFlag(cmd, &c.output)
	return cmd
}

func (c *cleanupCmd) check() error {
	if err := checkOutput(c.output); err != nil {
		return err
	}
	if c.concurrency < 1 {
		return usagef("invalid --concurrency %d: give at least 1", c.concurrency)
	}
	if c.resume != "" && (c.dryRun || len(c.groupIDs) > 0 || c.groupIDsFile != "" || c.hubDevices || c.includeStale || c.deleteUnregistered) {
		return usagef("cannot combine --resume with --dry-run, --group-id, --group-ids-file, --hub-devices, --include-stale or --delete-unregistered-devices: a resumed job runs as it was planned")
	}
	if c.resume != "" {
		if err := checkID("--resume", c.resume); err != nil {
			return err
		}
	}
	if err := checkIDs("--group-id", c.groupIDs); err != nil {
		return err
	}
	if c.groupIDsFile != "" {
		ids, err := readGroupIDs(c.groupIDsFile, c.a.err)
		if err != nil {
			return err
		}
		c.groupIDs = append(c.groupIDs, ids...)
	}
	return nil
}

// readGroupIDs reads one group id a line; blank lines and # comments are
// skipped. Every bad line is reported and the good ones kept.
func readGroupIDs(path string, warn io.Writer) ([]string, error) {
	in, closeFile, err := openInput("--group-ids-file", path, nil)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	var ids []string
	err = readLines(in, 64<<10, func(n int, b []byte, tooLong bool) {
		line := strings.TrimSpace(string(b))
		switch {
		case tooLong:
			fmt.Fprintf(warn, "%s:%d: skipped: the line is longer than 64 KiB\n", shown(path), n)
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			if err := checkID("group ID", line); err != nil {
				fmt.Fprintf(warn, "%s:%d: skipped: %v\n", shown(path), n, err)
				return
			}
			ids = append(ids, line)
		}
	})
	if err != nil {
		return nil, fileError("read", "--group-ids-file", path, err)
	}
	return ids, nil
}

// newEngine wires the cleanup engine to the target and its linked hubs.
func (a *app) newEngine(t *target) (*cleanup.Engine, error) {
	hubs, err := t.registries()
	if err != nil {
		return nil, err
	}
	e := &cleanup.Engine{DPS: t.client, StateDir: a.stateDir}
	for _, h := range hubs {
		e.Hubs = append(e.Hubs, h)
	}
	return e, nil
}

func (c *cleanupCmd) run(ctx context.Context, t *target) error {
	eng, err := c.a.newEngine(t)
	if err != nil {
		return err
	}
	var job *cleanup.Job
	var plan *cleanup.Plan
	if c.resume != "" {
		if job, err = eng.OpenJob(c.resume); err != nil {
			return err
		}
		fmt.Fprintf(c.a.err, "resuming job %s on %s: %d of %d deletes left\n", job.ID, t.name, job.Pending(), len(job.Actions))
	} else {
		if plan, err = c.scan(ctx, eng, t); err != nil {
			return err
		}
		sel := cleanup.Selection{HubDevices: c.hubDevices, IncludeStale: c.includeStale, UnregisteredDevices: c.deleteUnregistered}
		actions := plan.Actions(sel)
		if c.output == outputJSON {
			if c.dryRun || len(actions) == 0 {
				return writeJSON(c.a.out, cleanupReport{Plan: plan, Actions: actions})
			}
		} else {
			printPlan(c.a.out, plan, sel)
		}
		if len(actions) == 0 {
			fmt.Fprintln(c.a.err, "nothing to delete")
			return nil
		}
		if c.dryRun {
			fmt.Fprintf(c.a.out, "dry run: %s would be deleted; nothing was\n", describeActions(actions))
			return nil
		}
		prompt := fmt.Sprintf("Delete %s on %s? [y/N] ", describeActions(actions), t.name)
		if sel.UnregisteredDevices && len(plan.Unregistered) > 0 {
			prompt = fmt.Sprintf("This deletes %s, which DPS never provisioned or no longer has a record of; they may be in use.\n%s",
				unregisteredSummary(plan), prompt)
		}
		if !c.yes && !c.confirm(prompt) {
			fmt.Fprintln(c.a.err, "nothing deleted")
			return nil
		}
		if job, err = eng.NewJob(plan, sel); err != nil {
			return err
		}
		fmt.Fprintf(c.a.err, "job %s started; if it is interrupted, continue it with: dpsconsole cleanup --resume %s\n", job.ID, job.ID)
	}
	sum, err := runWithProgress(ctx, c.a.err, func(events chan<- cleanup.Event) (cleanup.Summary, error) {
		return eng.Run(ctx, job, cleanup.RunOptions{Concurrency: c.concurrency}, events)
	})
	return reportRun(c.a.out, c.output, plan, sum, err, job.ID)
}

// printRun prints the result of a run: the JSON report, or the summary.
func printRun(w io.Writer, output string, plan *cleanup.Plan, sum cleanup.Summary) error {
	if output == outputJSON {
		return writeJSON(w, cleanupReport{Plan: plan, Summary: &sum})
	}
	printSummary(w, sum)
	return nil
}

// reportRun prints what a run did and returns the command's result: the
// error that stopped the run, or exit status 1 when some deletes failed.
func reportRun(w io.Writer, output string, plan *cleanup.Plan, sum cleanup.Summary, err error, jobID string) error {
	if errors.Is(err, cleanup.ErrJobRunning) {
		return err // nothing ran here, so there is nothing to report
	}
	if werr := printRun(w, output, plan, sum); werr != nil {
		return werr
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		return fmt.Errorf("%w; continue with: dpsconsole cleanup --resume %s", err, jobID)
	}
	if len(sum.Failures) > 0 {
		return silentExit{exitInvalid}
	}
	return nil
}

// cleanupReport is the --output json document.
type cleanupReport struct {
	Plan    *cleanup.Plan    `json:"plan,omitempty"`
	Actions []cleanup.Action `json:"actions,omitempty"` // dry run: what would be deleted
	Summary *cleanup.Summary `json:"summary,omitempty"`
}

func (c *cleanupCmd) scan(ctx context.Context, eng *cleanup.Engine, t *target) (*cleanup.Plan, error) {
	events := make(chan cleanup.Event, 16)
	done := make(chan struct{})
	tty := isTerminal(c.a.err)
	go func() {
		defer close(done)
		for ev := range events {
			sp, ok := ev.(cleanup.ScanProgress)
			switch {
			case !ok:
			case tty:
				fmt.Fprintf(c.a.err, "\r\033[Kscanning %s: %s %d", t.name, sp.Source, sp.Count)
			case sp.Done:
				fmt.Fprintf(c.a.err, "scanned %s: %d\n", sp.Source, sp.Count)
			}
		}
		if tty {
			fmt.Fprint(c.a.err, "\r\033[K")
		}
	}()
	plan, err := eng.Scan(ctx, cleanup.ScanOptions{GroupIDs: c.groupIDs}, events)
	close(events)
	<-done
	return plan, err
}

func (c *cleanupCmd) confirm(prompt string) bool {
	fmt.Fprint(c.a.err, prompt)
	line, _ := bufio.NewReader(c.a.in).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

func printPlan(w io.Writer, plan *cleanup.Plan, sel cleanup.Selection) {
	for _, n := range plan.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
	defer printUnregistered(w, plan, sel)
	if len(plan.Findings) == 0 {
		fmt.Fprintf(w, "no orphaned or stale registration records on %s\n", plan.Host)
		return
	}
	tw := newTable(w, column{"REASON", 14}, column{"GROUP", 32}, column{"RECORDS", 8}, column{"HUB DEVICES", 11}, column{"ACTION", 0})
	for _, n := range plan.Counts(sel) {
		group := n.GroupID
		if group == "" {
			group = "(unknown)"
		}
		action := "delete records"
		switch {
		case !n.Selected:
			action = "keep (--include-stale deletes)"
		case sel.HubDevices && n.HubDevices > 0:
			action = "delete records and hub devices"
		}
		tw.row(string(n.Reason), group, strconv.Itoa(n.Records), strconv.Itoa(n.HubDevices), action)
	}
}

// printUnregistered lists the hub devices without a registration record,
// per hub, and what becomes of them.
func printUnregistered(w io.Writer, plan *cleanup.Plan, sel cleanup.Selection) {
	if len(plan.Unregistered) == 0 {
		if len(plan.Notes) == 0 || plan.Notes[0] != cleanup.NoHubsNote {
			fmt.Fprintln(w, "no hub devices without a registration record")
		}
		return
	}
	action := "kept (--delete-unregistered-devices deletes them)"
	if sel.UnregisteredDevices {
		action = "to delete"
	}
	fmt.Fprintf(w, "%s without a registration record, %s:\n", plural(len(plan.Unregistered), "hub device"), action)
	tw := newTable(w, column{"REASON", 20}, column{"HUB", 32}, column{"DEVICE ID", 0})
	for _, d := range plan.Unregistered {
		tw.row(string(cleanup.ReasonUnregistered), d.Hub, d.DeviceID)
	}
}

// unregisteredSummary names how many unregistered devices each hub has.
func unregisteredSummary(plan *cleanup.Plan) string {
	var parts []string
	for _, n := range plan.UnregisteredCounts() {
		parts = append(parts, plural(n.Devices, "unregistered hub device")+" on "+n.Hub)
	}
	return strings.Join(parts, ", ")
}

func describeActions(actions []cleanup.Action) string {
	count := map[cleanup.ActionKind]int{}
	unregistered := 0
	for _, a := range actions {
		if a.Reason == cleanup.ReasonUnregistered {
			unregistered++
			continue
		}
		count[a.Kind]++
	}
	parts := []string{plural(count[cleanup.DeleteRecord], "registration record")}
	if n := count[cleanup.DeleteHubDevice]; n > 0 {
		parts = append(parts, plural(n, "hub device identity"))
	}
	if unregistered > 0 {
		parts = append(parts, plural(unregistered, "unregistered hub device"))
	}
	if n := count[cleanup.DeleteGroup]; n > 0 {
		parts = append(parts, plural(n, "enrollment group"))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(what, "y"))
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func printSummary(w io.Writer, sum cleanup.Summary) {
	for _, kind := range []cleanup.ActionKind{cleanup.DeleteRecord, cleanup.DeleteHubDevice, cleanup.DeleteGroup} {
		o := sum.Outcomes[kind]
		if len(o) == 0 {
			continue
		}
		line := fmt.Sprintf("%-12s deleted %d, already gone %d", kind+":", o[cleanup.OutcomeDeleted], o[cleanup.OutcomeGone])
		if n := o[cleanup.OutcomeChanged]; n > 0 {
			line += fmt.Sprintf(", changed since the scan (kept) %d", n)
		}
		if n := o[cleanup.OutcomeFailed]; n > 0 {
			line += fmt.Sprintf(", failed %d", n)
		}
		fmt.Fprintln(w, line)
	}
	for _, f := range sum.Failures {
		fmt.Fprintln(w, "failed: "+f.Error)
	}
	fmt.Fprintf(w, "%d requests, %d throttled (429), in %s (job %s)\n", sum.Requests, sum.Throttled, sum.Elapsed.Round(time.Millisecond), sum.JobID)
}

// runWithProgress runs fn, drawing its Progress events on w: a bar redrawn
// in place on a terminal, a plain line every few seconds otherwise.
func runWithProgress(ctx context.Context, w io.Writer, fn func(chan<- cleanup.Event) (cleanup.Summary, error)) (cleanup.Summary, error) {
	events := make(chan cleanup.Event, 16)
	done := make(chan struct{})
	tty := isTerminal(w)
	go func() {
		defer close(done)
		var last time.Time
		for ev := range events {
			switch ev := ev.(type) {
			case cleanup.Progress:
				switch {
				case tty:
					fmt.Fprint(w, "\r\033[K"+progressLine(ev, true))
					if ev.Final {
						fmt.Fprintln(w)
					}
				case ev.Final || time.Since(last) >= 2*time.Second:
					fmt.Fprintln(w, progressLine(ev, false))
					last = time.Now()
				}
			case cleanup.Failure:
				if tty {
					fmt.Fprint(w, "\r\033[K")
				}
				fmt.Fprintln(w, "failed: "+ev.Error)
			}
		}
	}()
	sum, err := fn(events)
	close(events)
	<-done
	return sum, err
}

// progressLine renders done/total, rate, ETA and errors; with bar, a
// 30-cell bar in front.
func progressLine(p cleanup.Progress, bar bool) string {
	var b strings.Builder
	frac := 1.0
	if p.Total > 0 {
		frac = float64(p.Done) / float64(p.Total)
	}
	if bar {
		const width = 30
		full := int(frac * width)
		b.WriteString("[" + strings.Repeat("█", full) + strings.Repeat("░", width-full) + "] ")
	}
	fmt.Fprintf(&b, "%d/%d (%.0f%%)  %.0f/s", p.Done, p.Total, 100*frac, p.Rate)
	if p.ETA > 0 {
		fmt.Fprintf(&b, "  ETA %s", p.ETA.Round(time.Second))
	}
	fmt.Fprintf(&b, "  errors %d  throttled %d  in flight ≤%d", p.Failed, p.Throttled, p.Concurrency)
	if p.Pace > 0 {
		fmt.Fprintf(&b, "  paced %.0f/s", p.Pace)
	}
	return b.String()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// runSafe is `groups delete ID --with-registrations [--with-hub-devices]`:
// the group's records (and their hub devices) first, then the group, as a
// resumable cleanup job.
func (d *groupsDelete) runSafe(ctx context.Context, t *target, id string) error {
	if !d.withRegistrations {
		return usagef("use --with-hub-devices together with --with-registrations (hub devices are deleted with their records)")
	}
	if d.etag != "" {
		return usagef("cannot combine --etag with --with-registrations: the group is deleted with the ETag it has when its records are listed")
	}
	eng, err := d.a.newEngine(t)
	if err != nil {
		return err
	}
	plan, err := eng.PlanGroupDeletion(ctx, id, nil)
	if err != nil {
		return err
	}
	job, err := eng.NewJob(plan, cleanup.Selection{HubDevices: d.withHubDevices})
	if err != nil {
		return err
	}
	fmt.Fprintf(d.a.err, "deleting %s; job %s (continue an interrupted run with: dpsconsole cleanup --resume %s)\n",
		describeActions(job.Actions), job.ID, job.ID)
	sum, err := runWithProgress(ctx, d.a.err, func(events chan<- cleanup.Event) (cleanup.Summary, error) {
		return eng.Run(ctx, job, cleanup.RunOptions{}, events)
	})
	return reportRun(d.a.out, d.output, plan, sum, err, job.ID)
}
