package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/dps/fleet"
	"github.com/dpsconsole/dpsconsole/keys"
)

// fleetCmd is `dpsconsole fleet`: many simulated devices register at once.
type fleetCmd struct {
	a                *app
	fleet.Options    // the run's flags, shared with the console's :fleet form
	idScope          string
	provisioningHost string
	resume           string
	reregister       bool
	deleteRun        string
	yes              bool
	output           string
}

func newFleetCmd(a *app) *cobra.Command {
	c := &fleetCmd{a: a}
	cmd := &cobra.Command{
		Use:   "fleet --group ID --devices N [--prefix P] [--start K]",
		Short: "Register a fleet of simulated devices from an enrollment group",
		Long: `fleet registers N simulated symmetric-key devices, PREFIX-K … PREFIX-(K+N-1),
with keys derived from an enrollment group's key (read through the service API,
or from --group-key-file). Each device registers on its own connection, as a
real device does: its own TLS connection over --transport https (the default),
its own MQTT connection (one CONNECT, closed when it is done) over mqtt or
mqtt-ws; --telemetry goes over the same transport.

Devices start at --rate (e.g. 50/s or 1000/min) or along --ramp
(FROM..TO/UNIT:DURATION, e.g. 0..500/s:60s), at most --concurrency at once.
Against a real DPS the default rate is the documented quota, 1,000
registrations a minute; against an emulator on this machine devices start
as fast as --concurrency allows. Every Retry-After (over MQTT a res/429 with
retry-after) pauses the whole fleet.

Progress is drawn on stderr; the summary goes to stdout. Every device's
outcome is logged under <state-dir>/fleet-runs/<RUN>: ctrl+c stops the run
(registrations in flight finish first) and --resume RUN continues it without
registering any device twice (--reregister registers them all again, after
asking unless --yes). --delete RUN deletes the registration records
the run made, and their devices in the linked hubs (asks first unless --yes).`,
		Example: `  dpsconsole fleet --group mylegacydevices --devices 100 --prefix sensor
  dpsconsole fleet --group plant-a --devices 10000 --ramp 0..500/s:60s --concurrency 500
  dpsconsole fleet --group plant-a --devices 2000 --transport mqtt --telemetry 3
  dpsconsole fleet --resume 20261201-101500-a1b2c3
  dpsconsole fleet --delete 20261201-101500-a1b2c3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.check(cmd); err != nil {
				return err
			}
			return a.withTarget(cmd.Context(), func(t *target) error { return c.run(cmd.Context(), t) })
		},
	}
	f := cmd.Flags()
	c.AddFlags(f)
	f.StringVar(&c.idScope, "id-scope", "", "the DPS ID scope (default: the emulator's, or $DPS_ID_SCOPE)")
	f.StringVar(&c.provisioningHost, "provisioning-host", "", "device endpoint host[:port] (default: the emulator's, or global.azure-devices-provisioning.net)")
	f.StringVar(&c.deleteRun, "delete", "", "delete the registration records (and hub devices) run RUN made, through the clean-up engine")
	f.BoolVarP(&c.yes, "yes", "y", false, "with --delete or --reregister: do not ask first")
	f.StringVar(&c.resume, "resume", "", "continue the stopped run RUN (the id printed when it started)")
	f.BoolVar(&c.reregister, "reregister", false, "with --resume: register every device of the run again, those already registered included")
	addOutputFlag(cmd, &c.output)
	return cmd
}

// check validates the flags before anything touches the network.
func (c *fleetCmd) check(cmd *cobra.Command) error {
	if err := checkOutput(c.output); err != nil {
		return err
	}
	if c.deleteRun != "" {
		return c.checkDelete(cmd)
	}
	if c.reregister && c.resume == "" {
		return usagef("--reregister goes with --resume RUN (a new run registers all its devices anyway)")
	}
	if c.yes && !c.reregister {
		return usagef("--yes only goes with --delete or --reregister")
	}
	changed := func(name string) bool { return cmd.Flags().Changed(name) }
	if c.resume != "" {
		for _, name := range []string{"group", "devices", "prefix", "start", "secondary", "id-scope", "transport"} {
			if changed(name) {
				return usagef("--%s cannot be changed on --resume: the run keeps what it started with", name)
			}
		}
		if err := c.CheckPacing(changed); err != nil {
			return usagef("%v", err)
		}
	} else if err := c.Check(changed); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// schedule is the start schedule: --rate, --ramp, or the default for host.
func (c *fleetCmd) schedule(host string) (fleet.Schedule, error) {
	s, err := c.Schedule(host)
	if err != nil {
		return s, usagef("%v", err)
	}
	return s, nil
}

func (c *fleetCmd) run(ctx context.Context, t *target) error {
	if c.deleteRun != "" {
		return c.delete(ctx, t)
	}
	spec, err := c.spec(t)
	if err != nil {
		return err
	}
	host := c.provisioningHost
	if host == "" {
		host = t.deviceEndpoint
	}
	sched, err := c.schedule(host)
	if err != nil {
		return err
	}
	if !fleet.IsLoopback(host) && sched.To > fleet.Quota.To {
		fmt.Fprintf(c.a.err, "note: %s is above DPS's documented quota (1,000 registrations a minute): expect 429s; every Retry-After is honoured\n", sched)
	}
	gk, err := c.groupKey(ctx, t, spec.Group, spec.KeySource == fleet.KeySecondary)
	if err != nil {
		return err
	}
	base, ok := t.transport.Transport.(*http.Transport)
	if !ok {
		return errors.New("fleet: the target's HTTP transport has no TLS settings to give the devices")
	}
	verb := "registering"
	switch {
	case c.reregister:
		// Each device's registration record and hub identity are redone
		// (its twin reset, as the group's reprovision policy says).
		if !c.yes && !c.confirm(fmt.Sprintf("Register all %d devices of fleet run %s (%s-%d … %s-%d) again on %s? DPS re-provisions each, as its group's reprovision policy says. [y/N] ",
			spec.Count, spec.ID, spec.Prefix, spec.Start, spec.Prefix, spec.Start+spec.Count-1, t.name)) {
			fmt.Fprintln(c.a.err, "nothing registered")
			return nil
		}
		verb = "registering again"
	case c.resume != "":
		verb = "resuming"
	}
	fmt.Fprintf(c.a.err, "%s %s-%d … %s-%d (%d devices, group %s) on %s over %s, %s, %d at once\n",
		verb, spec.Prefix, spec.Start, spec.Prefix, spec.Start+spec.Count-1, spec.Count, spec.Group, host, spec.Transport, sched, c.Concurrency)
	fmt.Fprintf(c.a.err, "run %s (continue a stopped run with: dpsconsole fleet --resume %s)\n", spec.ID, spec.ID)
	draw := newFleetProgress(c.a.err)
	stopNote := context.AfterFunc(ctx, func() {
		draw.note("stopping: no new devices; the registrations in flight finish (up to 30 s)")
	})
	defer stopNote()
	sum, runErr := fleet.Run(ctx, fleet.Config{
		StateDir:         c.a.stateDir,
		Spec:             spec,
		Resume:           c.resume != "",
		Reregister:       c.reregister,
		GroupKey:         gk,
		ProvisioningHost: host,
		Schedule:         sched,
		Concurrency:      c.Concurrency,
		// Each device gets its own connection (over HTTPS its own transport,
		// the engine's default), as a real device has: a shared pool would
		// carry the whole fleet over a few kept-alive connections. Devices
		// trust what the target's client does and their MQTT goes where
		// the target says (an emulator's own ports).
		MQTTHost:      t.mqttEndpoint,
		HubMQTTHost:   t.hubMQTTHost,
		TLSConfig:     base.TLSClientConfig,
		Lookup:        t.client.GetRegistrationState,
		Telemetry:     c.Telemetry,
		Interval:      c.Interval,
		Progress:      draw.snapshot,
		ProgressEvery: draw.every,
	})
	draw.end()
	if runErr != nil && sum.Run == "" {
		return runErr // nothing ran
	}
	if err := c.report(sum); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d devices did not register (see the failures above); --resume %s tries the refused ones again", sum.Failed, sum.Total, sum.Run)
	}
	if sum.TelemetryFailed > 0 {
		return fmt.Errorf("%d devices registered but their telemetry failed: %s", sum.TelemetryFailed, sum.TelemetryFailure)
	}
	return nil
}

// checkDelete allows only the flags --delete uses (check has read --output).
func (c *fleetCmd) checkDelete(cmd *cobra.Command) error {
	var bad []string
	local := cmd.LocalFlags()
	cmd.Flags().Visit(func(f *pflag.Flag) {
		switch {
		case local.Lookup(f.Name) == nil: // --state-dir and the other global flags
		case f.Name == "delete", f.Name == "yes", f.Name == "output":
		default:
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return usagef("--delete takes only --yes and --output, not %s", strings.Join(bad, ", "))
	}
	return nil
}

// delete removes what run --delete made: its devices' registration records
// and their hub identities, as a resumable clean-up job.
func (c *fleetCmd) delete(ctx context.Context, t *target) error {
	spec, err := fleet.OpenSpec(c.a.stateDir, c.deleteRun)
	if err != nil {
		return usagef("--delete: %v", err)
	}
	if !strings.EqualFold(spec.Host, t.client.Host()) {
		return fmt.Errorf("run %s was made for DPS %s, but the target is %s", spec.ID, spec.Host, t.client.Host())
	}
	eng, err := c.a.newEngine(t)
	if err != nil {
		return err
	}
	linked := func(host string) bool {
		for _, h := range eng.Hubs {
			if strings.EqualFold(h.Host(), host) {
				return true
			}
		}
		return false
	}
	plan, err := fleet.DeletionPlan(c.a.stateDir, spec, linked)
	if err != nil {
		return err
	}
	sel := cleanup.Selection{HubDevices: true}
	actions := plan.Actions(sel)
	if len(actions) == 0 {
		fmt.Fprintf(c.a.err, "run %s registered no device: nothing to delete\n", spec.ID)
		return nil
	}
	if !c.yes && !c.confirm(fmt.Sprintf("Delete %s of fleet run %s (%s-%d … %s-%d) on %s? [y/N] ",
		describeActions(actions), spec.ID, spec.Prefix, spec.Start, spec.Prefix, spec.Start+spec.Count-1, t.name)) {
		fmt.Fprintln(c.a.err, "nothing deleted")
		return nil
	}
	job, err := eng.NewJob(plan, sel)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.a.err, "job %s started; if it is interrupted, continue it with: dpsconsole cleanup --resume %s\n", job.ID, job.ID)
	sum, err := runWithProgress(ctx, c.a.err, func(events chan<- cleanup.Event) (cleanup.Summary, error) {
		return eng.Run(ctx, job, cleanup.RunOptions{}, events)
	})
	return reportRun(c.a.out, c.output, plan, sum, err, job.ID)
}

func (c *fleetCmd) confirm(prompt string) bool { return (&cleanupCmd{a: c.a}).confirm(prompt) }

// spec is the run: a new one from the flags, or the one to resume.
func (c *fleetCmd) spec(t *target) (fleet.Spec, error) {
	if c.resume != "" {
		s, err := fleet.OpenSpec(c.a.stateDir, c.resume)
		if err != nil {
			return s, usagef("--resume: %v", err)
		}
		if !strings.EqualFold(s.Host, t.client.Host()) {
			return s, fmt.Errorf("run %s was made for DPS %s, but the target is %s", s.ID, s.Host, t.client.Host())
		}
		if s.KeySource == fleet.KeyFile && c.GroupKeyFile == "" {
			return s, usagef("run %s derived its device keys from a key file: pass --group-key-file again", s.ID)
		}
		if s.KeySource != fleet.KeyFile && c.GroupKeyFile != "" {
			return s, usagef("run %s derived its device keys from the group's %s key: resume it without --group-key-file", s.ID, s.KeySource)
		}
		return s, nil
	}
	scope := c.idScope
	if scope == "" {
		scope = t.idScope
	}
	if scope == "" {
		return fleet.Spec{}, usagef("the ID scope is unknown: pass --id-scope or set $DPS_ID_SCOPE (Azure portal: your DPS → Overview → ID Scope)")
	}
	s, err := fleet.NewSpec(t.client.Host(), scope, c.Group, c.Prefix, c.Start, c.Devices, c.Transport)
	if err != nil {
		return s, usagef("%v", err)
	}
	s.KeySource = c.KeySource()
	return s, nil
}

// groupKey is the group key: from --group-key-file, or read through the
// service API. A key file that cannot be read or holds no key is a
// command-line mistake (exit status 2), as for keys derive.
func (c *fleetCmd) groupKey(ctx context.Context, t *target, group string, secondary bool) (keys.Key, error) {
	if c.GroupKeyFile != "" {
		k, warn, err := fleet.ReadGroupKeyFile(c.GroupKeyFile)
		if err != nil {
			return keys.Key{}, usagef("%v", err)
		}
		if warn != "" {
			fmt.Fprintln(c.a.err, "note: "+warn)
		}
		return k, nil
	}
	k, _, err := serviceGroupKey(ctx, t, group, secondary)
	return k, err
}

// fleetProgress draws the progress line on stderr: redrawn in place on a
// terminal, a plain line every few seconds otherwise.
type fleetProgress struct {
	mu    sync.Mutex // the engine's ticker and the ctrl+c note both write
	w     io.Writer
	tty   bool
	every time.Duration
	last  string
}

func newFleetProgress(w io.Writer) *fleetProgress {
	p := &fleetProgress{w: w, tty: isTerminal(w), every: 250 * time.Millisecond}
	if !p.tty {
		p.every = 2 * time.Second
	}
	return p
}

// snapshot is called by the engine from one goroutine at a fixed rate.
func (p *fleetProgress) snapshot(s fleet.Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = fleetLine(s)
	if p.tty {
		// A line wider than the terminal wraps, and \r would redraw only its
		// last part: cut it to the width.
		line := p.last
		if f, ok := p.w.(*os.File); ok {
			if w, _, err := term.GetSize(f.Fd()); err == nil && w > 1 && utf8.RuneCountInString(line) >= w {
				line = string([]rune(line)[:w-1])
			}
		}
		fmt.Fprint(p.w, "\r\033[K"+line)
	} else {
		fmt.Fprintln(p.w, p.last)
	}
}

func (p *fleetProgress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, msg)
}

func (p *fleetProgress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.last != "" {
		fmt.Fprintln(p.w)
	}
}

func fleetLine(s fleet.Snapshot) string {
	var b strings.Builder
	pct := 100.0
	if s.Total > 0 {
		pct = 100 * float64(s.Done) / float64(s.Total)
	}
	// What matters most first: a narrow terminal cuts the end off.
	fmt.Fprintf(&b, "%d/%d (%.0f%%)  %.1f/s", s.Done, s.Total, pct, s.Rate)
	if s.ETA > 0 && s.Done < s.Total {
		fmt.Fprintf(&b, "  ETA %s", s.ETA.Round(time.Second))
	}
	fmt.Fprintf(&b, "  in flight %d  assigned %d  failed %d  throttled %d", s.InFlight, s.Assigned, s.Failed, s.Throttled)
	if s.Latency.P50 > 0 {
		fmt.Fprintf(&b, "  p50 %s p95 %s p99 %s", ms(s.Latency.P50), ms(s.Latency.P95), ms(s.Latency.P99))
	}
	return b.String()
}

func ms(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

func (c *fleetCmd) telemetryCell(s fleet.Summary) string {
	if c.Telemetry == 0 {
		return ""
	}
	cell := fmt.Sprintf("%d messages sent", s.TelemetrySent)
	if s.TelemetryFailed > 0 {
		cell += fmt.Sprintf("; %d devices stopped on an error, e.g. %s", s.TelemetryFailed, s.TelemetryFailure)
	}
	return cell
}

// fleetJSON is the JSON summary: durations in milliseconds.
type fleetJSON struct {
	fleet.Summary
	Latency       latencyJSON `json:"latency"`
	ThrottleWait  int64       `json:"throttleWaitMs"`
	MaxRetryAfter int64       `json:"maxRetryAfterMs"`
	Elapsed       int64       `json:"elapsedMs"`
}

type latencyJSON struct {
	P50 int64 `json:"p50Ms"`
	P95 int64 `json:"p95Ms"`
	P99 int64 `json:"p99Ms"`
	Max int64 `json:"maxMs"`
}

func (c *fleetCmd) report(s fleet.Summary) error {
	if c.output == outputJSON {
		l := s.Latency
		return writeJSON(c.a.out, fleetJSON{Summary: s,
			Latency:      latencyJSON{l.P50.Milliseconds(), l.P95.Milliseconds(), l.P99.Milliseconds(), l.Max.Milliseconds()},
			ThrottleWait: s.ThrottleWait.Milliseconds(), MaxRetryAfter: s.MaxRetryAfter.Milliseconds(), Elapsed: s.Elapsed.Milliseconds()})
	}
	w := c.a.out
	state := "complete"
	if s.Interrupted {
		state = "stopped"
	}
	fields(w,
		"Run", s.Run+" ("+state+")",
		"Devices", fmt.Sprintf("%d of %d finished (%d in this run), %d pending", s.Finished, s.Total, s.ThisRun, s.Pending),
		"Assigned", fmt.Sprint(s.Assigned),
		"Not assigned", fmt.Sprint(s.Failed),
		"Latency", fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s", ms(s.Latency.P50), ms(s.Latency.P95), ms(s.Latency.P99), ms(s.Latency.Max)),
		"Throttled (429)", fmt.Sprintf("%d, Retry-After %s in all, longest %s", s.Throttled, s.ThrottleWait, s.MaxRetryAfter),
		"Elapsed", fmt.Sprintf("%s (schedule %s)", s.Elapsed.Round(time.Millisecond), s.Schedule),
		"Telemetry", c.telemetryCell(s),
	)
	if len(s.ByStatus) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, column{"STATUS", 10}, column{"SUBSTATUS", 34}, column{"DEVICES", 0})
		for _, st := range s.ByStatus {
			t.row(st.Status, st.Substatus, fmt.Sprint(st.Count))
		}
	}
	if len(s.ByHub) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, column{"HUB", 46}, column{"DEVICES", 0})
		for _, h := range s.ByHub {
			t.row(h.Hub, fmt.Sprint(h.Count))
		}
	}
	if len(s.Failures) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, column{"DEVICES", 8}, column{"ERROR", 0})
		for _, f := range s.Failures {
			t.row(fmt.Sprint(f.Count), f.Error+" (e.g. "+strings.Join(f.Examples, ", ")+")")
		}
	}
	return nil
}
