package tui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/fleet"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
	"github.com/dpsconsole/dpsconsole/tui/components/form"
)

// :fleet runs the engine of `dpsconsole fleet` with a live dashboard. The
// engine reports nothing per device into the event loop: a frame tick
// reads one Board from the engine's feed (fleet.Live) every frameEvery,
// however many devices finish meanwhile.

// frameEvery is the dashboard's frame rate: 10 frames a second.
const frameEvery = 100 * time.Millisecond

// fleetLabels are the form's fields, in fleet.OptionNames' order.
var fleetLabels = []string{"Group", "Devices", "Prefix", "Start", "Transport", "Rate", "Ramp", "Concurrency", "Telemetry", "Interval", "Secondary", "Key file"}

type fleetView struct {
	c     *Common
	vid   int
	f     *form.Form
	err   string
	field int // the field err is about, -1 for none

	preparing bool
	confirm   *confirm.Dialog

	// The run: gen tells its frames and its end from an earlier run's.
	gen      int
	running  bool
	stopping bool
	cancel   context.CancelFunc
	live     *fleet.Live
	start    fleetStart // what the last run was started with (resume repeats it)
	board    fleet.Board
	summary  *fleet.Summary
	runErr   string
	cursor   int  // in the devices table
	escaped  bool // esc was pressed while the run goes
}

// fleetStart is a run ready to go: the key read, the records checked.
type fleetStart struct {
	spec     fleet.Spec
	opts     fleet.Options
	key      keys.Key
	schedule fleet.Schedule
	host     string
}

type fleetReadyMsg struct {
	gen      int
	start    fleetStart
	existing []string // IDs of the run that have a registration record
	warn     string   // about the key file, when others may read it
	err      error
}

type fleetFrameMsg struct {
	gen   int
	board fleet.Board
}

type fleetDoneMsg struct {
	gen     int
	board   fleet.Board
	summary fleet.Summary
	err     error
}

func newFleetView(c *Common, groupID string) *fleetView {
	v := &fleetView{c: c, vid: c.newID(), f: newForm(c, fleetLabels...), field: -1}
	defaults := fleet.OptionDefaults()
	for i, name := range fleet.OptionNames {
		v.f.Set(i, defaults[name])
	}
	v.f.Inputs[5].Placeholder = "e.g. 50/s or 1000/min (default: DPS's quota; unpaced on this machine)"
	v.f.Inputs[6].Placeholder = "e.g. 0..500/s:60s, instead of a rate"
	v.f.Set(0, groupID)
	v.f.Set(1, "") // no default: the operator says how many
	v.f.Inputs[1].Placeholder = "how many devices to register"
	v.f.Inputs[fieldOf(fleet.OptGroupKeyFile)].Placeholder = "a file holding the group key, instead of the group's own (read when the run starts)"
	return v
}

func (v *fleetView) id() int          { return v.vid }
func (v *fleetView) Title() string    { return "Fleet" }
func (v *fleetView) Editing() bool    { return v.f.Editing() || v.confirm != nil }
func (v *fleetView) Busy() bool       { return v.preparing || v.running }
func (v *fleetView) SetSize(w, _ int) { v.f.SetWidth(min(w-18, 70)) }

func (v *fleetView) Status() string {
	if v.board.Total == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d devices", v.board.Done, v.board.Total)
}

// Escape keeps the dashboard while the run goes: leaving would stop it
// unseen, so esc says how to stop it instead.
func (v *fleetView) Escape() bool {
	v.escaped = v.running
	return v.running
}

// RunningJob names the run, so quitting or leaving asks first.
func (v *fleetView) RunningJob() string {
	if v.running {
		return "the fleet run"
	}
	return ""
}

// Stop cancels a run still going when the view is closed.
func (v *fleetView) Stop() {
	if v.cancel != nil {
		v.cancel()
	}
}

func (v *fleetView) Hints() []*Binding {
	k := v.c.Keys
	switch {
	case v.confirm != nil:
		return nil
	case v.f.Editing():
		return []*Binding{k.Submit, k.NextField, k.Leave}
	case v.running:
		return []*Binding{k.FleetStop, k.Up, k.Down, k.Open}
	case v.summary != nil && v.summary.Pending > 0:
		return []*Binding{k.FleetResume, k.Up, k.Down, k.Open, k.NextField}
	case v.summary != nil:
		return []*Binding{k.Up, k.Down, k.Open, k.NextField}
	}
	return []*Binding{k.Submit, k.NextField}
}

func (v *fleetView) Init() tea.Cmd { return v.f.FocusOn(0) }

func (v *fleetView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case fleetReadyMsg:
		if msg.gen != v.gen {
			return nil
		}
		v.preparing = false
		if msg.err != nil {
			v.err, v.field = dps.ErrorMessage(msg.err), -1
			if oe := (*fleet.OptionError)(nil); errors.As(msg.err, &oe) { // the key file
				v.err, v.field = oe.Text, fieldOf(oe.Option)
				return v.f.FocusOn(v.field)
			}
			return nil
		}
		warn := tea.Cmd(nil)
		if msg.warn != "" {
			warn = flashWarn(msg.warn)
		}
		if len(msg.existing) > 0 {
			v.confirm = askFleetReRegister(msg.start, msg.existing, func() tea.Cmd { return v.begin(msg.start, false) })
			return warn
		}
		return tea.Batch(warn, v.begin(msg.start, false))
	case fleetFrameMsg:
		if msg.gen != v.gen || !v.running {
			return nil
		}
		v.board = msg.board
		return v.frame()
	case fleetDoneMsg:
		if msg.gen != v.gen {
			return nil
		}
		v.running, v.stopping, v.cancel = false, false, nil
		v.board, v.summary = msg.board, &msg.summary
		v.runErr = ""
		if msg.err != nil && !errors.Is(msg.err, fleet.ErrInterrupted) {
			v.runErr = dps.ErrorMessage(msg.err)
		}
		if msg.summary.Run == "" { // nothing ran: the form says why
			v.summary, v.err, v.field = nil, v.runErr, -1
			return nil
		}
		done := recordsChanged(v.vid, v.start.spec.Group)
		if msg.summary.Interrupted {
			return tea.Batch(done, flashInfo(fmt.Sprintf("stopped: %d of %d devices finished; r resumes the run", msg.summary.Finished, msg.summary.Total)))
		}
		return tea.Batch(done, flash(fmt.Sprintf("fleet run %s: %d of %d assigned", msg.summary.Run, msg.summary.Assigned, msg.summary.Total)))
	case tea.PasteMsg:
		cmd, _ := v.f.Paste(msg)
		return cmd
	case tea.KeyPressMsg:
		return v.key(msg)
	}
	return nil
}

func (v *fleetView) key(msg tea.KeyPressMsg) tea.Cmd {
	if v.confirm != nil {
		c := v.confirm
		v.confirm = nil
		return answer(c, msg)
	}
	k := v.c.Keys
	if v.f.Editing() {
		switch {
		case msg.String() == "enter": // every field has a value or a default: run from any
			v.f.FocusOn(-1)
			return v.submit()
		case v.f.Focus() == 4 && (msg.String() == "left" || msg.String() == "right"):
			v.f.Set(4, string(nextTransport(v.f.Value(4), msg.String() == "right")))
			return nil
		case v.f.Focus() == fieldOf(fleet.OptSecondary) && (msg.String() == "left" || msg.String() == "right"):
			v.f.Set(v.f.Focus(), strconv.FormatBool(v.f.Value(v.f.Focus()) != "true"))
			return nil
		case (v.f.Focus() == 4 || v.f.Focus() == fieldOf(fleet.OptSecondary)) && edits(msg):
			return nil // a choice (←/→): typed text would make a value that is none of them
		}
		cmd, _ := v.f.Update(msg)
		return cmd
	}
	rows := v.rows()
	switch {
	case v.running && k.FleetStop.Matches(msg):
		if !v.stopping {
			v.stopping = true
			v.cancel()
			return flashInfo("stopping: no new devices; the registrations in flight finish (up to 30 s)")
		}
		return nil
	case !v.running && v.summary != nil && v.summary.Pending > 0 && k.FleetResume.Matches(msg):
		return v.begin(v.start, true)
	case k.Down.Matches(msg):
		v.cursor = min(v.cursor+1, max(len(rows)-1, 0))
	case k.Up.Matches(msg):
		v.cursor = max(v.cursor-1, 0)
	case k.Open.Matches(msg) && v.cursor < len(rows) && (v.running || v.summary != nil):
		return v.c.open(newFleetDeviceView(v.c, rows[v.cursor]))
	case !v.running && (k.Submit.Matches(msg) || k.NextField.Matches(msg)):
		v.summary, v.board = nil, fleet.Board{} // a new run: back to the form
		return v.f.FocusOn(0)
	}
	return nil
}

// submit checks the form with the flags' own parsers and checks, then
// reads the group key and the run's existing records off the loop.
func (v *fleetView) submit() tea.Cmd {
	if v.c.ReadOnly {
		v.err, v.field = readOnlyRefusal(true, "fleet"), -1
		return nil
	}
	if v.running || v.preparing {
		return flashWarn("a fleet run is already going")
	}
	fields := map[string]string{}
	for i, name := range fleet.OptionNames {
		fields[name] = v.f.Value(i)
	}
	o, err := fleet.ParseOptions(fields)
	if err != nil {
		v.err, v.field = err.Error(), -1
		var oe *fleet.OptionError
		if errors.As(err, &oe) {
			v.field = fieldOf(oe.Option)
			return v.f.FocusOn(v.field)
		}
		return nil
	}
	t := v.c.Target
	if _, err := t.Device(device.Transport(o.Transport)); err != nil {
		v.err, v.field = err.Error(), -1
		return nil
	}
	if t.Service == nil || t.StateDir == "" {
		v.err, v.field = "a fleet run needs the target's service API and a state directory for its log", -1
		return nil
	}
	spec, err := fleet.NewSpec(t.Service.Host(), t.IDScope, o.Group, o.Prefix, o.Start, o.Devices, o.Transport)
	if err != nil {
		v.err, v.field = err.Error(), -1
		return nil
	}
	spec.KeySource = o.KeySource()
	sched, err := o.Schedule(t.DeviceEndpoint)
	if err != nil {
		v.err, v.field = err.Error(), fieldOf(fleet.OptRate)
		return nil
	}
	v.err, v.field = "", -1
	v.gen++
	v.preparing = true
	gen, svc, ctx := v.gen, t.Service, v.c.Ctx
	st := fleetStart{spec: spec, opts: o, schedule: sched, host: t.DeviceEndpoint}
	return do(v.vid, func() tea.Msg {
		key, warn, err := fleetGroupKey(ctx, svc, o, spec.Group)
		if err != nil {
			return fleetReadyMsg{gen: gen, err: err}
		}
		st.key = key
		existing, err := existingFleetRecords(ctx, svc, spec)
		return fleetReadyMsg{gen: gen, start: st, existing: existing, warn: warn, err: err}
	})
}

// fleetGroupKey reads the run's group key (a file, or the group's own
// through the service API), off the loop, as the CLI does.
func fleetGroupKey(ctx context.Context, svc *dps.Client, o fleet.Options, group string) (keys.Key, string, error) {
	if o.GroupKeyFile != "" {
		return fleet.ReadGroupKeyFile(o.GroupKeyFile)
	}
	k, err := groupKey(ctx, svc, group, o.Secondary)
	return k, "", err
}

func fieldOf(option string) int {
	for i, n := range fleet.OptionNames {
		if n == option {
			return i
		}
	}
	return -1
}

// begin starts the run (or resumes it) and the frame tick.
func (v *fleetView) begin(st fleetStart, resume bool) tea.Cmd {
	cfg, err := v.config(st, resume)
	if err != nil {
		v.err = err.Error()
		return nil
	}
	v.gen++
	ctx, cancel := context.WithCancel(v.c.Ctx)
	v.running, v.stopping, v.escaped, v.cancel, v.start = true, false, false, cancel, st
	v.summary, v.runErr, v.cursor, v.board = nil, "", 0, fleet.Board{}
	v.live = fleet.NewLive()
	cfg.Live = v.live
	gen, live := v.gen, v.live
	run := do(v.vid, func() tea.Msg {
		sum, err := fleet.Run(ctx, cfg)
		return fleetDoneMsg{gen: gen, board: live.Board(), summary: sum, err: err}
	})
	return tea.Batch(run, v.frame())
}

// frame asks for the next frame: the Board is read off the loop, once.
func (v *fleetView) frame() tea.Cmd {
	gen, live, to := v.gen, v.live, v.vid
	return tea.Tick(frameEvery, func(time.Time) tea.Msg {
		return routed{to: to, msg: fleetFrameMsg{gen: gen, board: live.Board()}}
	})
}

// config is the engine's configuration for the target.
func (v *fleetView) config(st fleetStart, resume bool) (fleet.Config, error) {
	t := v.c.Target
	base, err := baseTransport(t.HTTPClient)
	if err != nil {
		return fleet.Config{}, err
	}
	hubs := t.HubMQTTEndpoints
	return fleet.Config{
		StateDir: t.StateDir, Spec: st.spec, Resume: resume, GroupKey: st.key,
		ProvisioningHost: st.host, Schedule: st.schedule, Concurrency: st.opts.Concurrency,
		// Each device its own connection (the engine's default client), as the CLI's.
		MQTTHost:    t.MQTTEndpoint,
		HubMQTTHost: func(h string) string { return hubs[strings.ToLower(h)] },
		TLSConfig:   base.TLSClientConfig,
		Lookup:      t.Service.GetRegistrationState,
		Telemetry:   st.opts.Telemetry,
		Interval:    st.opts.Interval,
	}, nil
}

// baseTransport is the target's HTTP transport, under FailFast's wrapper.
func baseTransport(c *http.Client) (*http.Transport, error) {
	if c == nil {
		return http.DefaultTransport.(*http.Transport), nil
	}
	rt := c.Transport
	if u, ok := rt.(unreachableIsFinal); ok {
		rt = u.next
	}
	if rt == nil {
		return http.DefaultTransport.(*http.Transport), nil
	}
	tr, ok := rt.(*http.Transport)
	if !ok {
		return nil, errors.New("the target's HTTP transport cannot be cloned per device")
	}
	return tr, nil
}

// existingFleetRecords lists the run's IDs that already have a
// registration record in its group (a new run would register them again).
func existingFleetRecords(ctx context.Context, svc *dps.Client, spec fleet.Spec) ([]string, error) {
	var out []string
	pager := svc.NewRegistrationStatePager(spec.Group, &dps.PagerOptions{PageSize: recordPageSize})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("checking the group's registration records: %w", err)
		}
		for _, r := range page.Items {
			if inRun(spec, r.RegistrationID) {
				out = append(out, r.RegistrationID)
			}
		}
	}
	return out, nil
}

// inRun reports whether id is one of the run's registration IDs.
func inRun(spec fleet.Spec, id string) bool {
	num, ok := strings.CutPrefix(id, spec.Prefix+"-")
	n, err := strconv.Atoi(num)
	return ok && err == nil && strconv.Itoa(n) == num && n >= spec.Start && n < spec.Start+spec.Count
}

// askFleetReRegister holds a run whose IDs have records until the operator
// says yes: registering them again re-provisions each.
func askFleetReRegister(st fleetStart, existing []string, start func() tea.Cmd) *confirm.Dialog {
	eg := existing[:min(len(existing), 3)]
	text := fmt.Sprintf("%d of the run's %d device IDs already have registration records (%s%s) in group %s.\n"+
		"Registering them again applies the group's reprovision policy to each: its device may move to another hub, with its twin migrated or reset.",
		len(existing), st.spec.Count, strings.Join(eg, ", "), map[bool]string{true: ", …"}[len(existing) > len(eg)], st.spec.Group)
	return &confirm.Dialog{Text: text, Choices: []confirm.Choice{{Key: "y", Label: fmt.Sprintf("register all %d again", len(existing)), Run: start}}}
}

// edits reports whether a key would change a text field's value: text,
// space, backspace or delete.
func edits(msg tea.KeyPressMsg) bool {
	switch msg.String() {
	case "space", "backspace", "delete", "ctrl+h", "ctrl+w", "ctrl+u", "ctrl+k", "ctrl+d":
		return true
	}
	return msg.Text != ""
}
