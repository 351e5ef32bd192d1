// Package timeline runs one simulated registration and renders it live:
// connecting, request sent, operation id, each poll with its Retry-After
// countdown, the result, telemetry sent as the device, and the device's
// connection to its hub afterwards. Simulate and the tutorial both use it.
//
// A Model changes only in Update (and in the methods that start a run or
// a send, which return the Cmd doing the I/O); its Cmds do I/O through the
// Env's Target and only return messages.
package timeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// Target is what a Model needs of the console's target: a device client
// for DPS and one for the hub a device was assigned to.
type Target interface {
	Device(tr device.Transport) (*device.Client, error)
	HubDevice(hubHost, deviceID string, key keys.Key, tr device.Transport) (*hub.DeviceClient, error)
}

// Env is a Model's link to its console, built once by the view that owns it.
type Env struct {
	// Ctx bounds every run and connection; Stop ends them sooner.
	Ctx context.Context
	// Now is the clock.
	Now func() time.Time
	// ReadOnly refuses registrations, telemetry and the hub connection:
	// all of them are writes.
	ReadOnly bool
	// Target is nil when the console has none (then Start says so). Do not
	// set it to a nil pointer of a concrete type.
	Target Target
	// Route wraps each message the Model's Cmds return, so that it reaches
	// the owning view even when another one has the focus.
	Route func(tea.Msg) tea.Msg
	// Warn is the Cmd that flashes a refusal (read-only, nothing assigned).
	Warn func(text string) tea.Cmd
}

// RegisterMsg is one progress event of a running registration; the last
// one carries its result (Finished tells it apart).
type RegisterMsg struct {
	run   int
	ch    <-chan RegisterMsg
	ended <-chan struct{}
	ev    device.Event
	done  bool
	state dps.DeviceRegistrationState
	err   error
}

// Ended is closed once the goroutine of the run that sent m has ended.
func (m RegisterMsg) Ended() <-chan struct{} { return m.ended }

// TickMsg redraws the Retry-After countdown while a run is live.
type TickMsg struct{ run int }

// TelemetryMsg reports one telemetry message.
type TelemetryMsg struct {
	run int
	err error
}

// Model is the timeline of one registration at a time.
type Model struct {
	env     Env
	run     int                // generation: a new run drops events of the old one
	stopRun context.CancelFunc // ends the current run's goroutine; see Stop
	running bool
	// Transport is how the next run registers and sends telemetry; the
	// view sets it before Start.
	Transport device.Transport
	// PrevHub is the hub the device was on before this run, "" when it had
	// none (or nobody knows); the view sets it before Start, so the result
	// can say whether DPS moved the device.
	PrevHub string
	host    string
	regID   string
	key     keys.Key
	started time.Time
	events  []device.Event
	steps   []Step    // a recorded run's (Show), in place of events
	waitTil time.Time // end of the current Retry-After, for the countdown
	result  *dps.DeviceRegistrationState
	err     error
	elapsed time.Duration

	sent, sendFailed int
	sending          bool
	sendErr          error

	// The device's connection to its hub after the run (live.go):
	// liveGen drops the events of an earlier connection of the same run.
	liveGen        int
	liveOn, liveUp bool
	stopLive       context.CancelFunc
	live           []liveLine
}

// New is an empty timeline: no registration has run yet.
func New(env Env) *Model { return &Model{env: env} }

// Run is a registration as a Model shows it.
type Run struct {
	RegID   string                       // the registration ID it ran as
	Started time.Time                    // when it began: the event times count from here
	Elapsed time.Duration                // how long it took
	Result  *dps.DeviceRegistrationState // nil while running or after an error
	Err     error
	// Steps, when set, are the run as it was recorded (a fleet device's,
	// already in words, its outcome the last), shown in place of the events.
	Steps []Step
}

// Step is one recorded step of a run that ended elsewhere.
type Step struct {
	At   time.Time
	Text string
	Err  bool
}

// Show replaces the timeline with a registration that ended elsewhere
// (Transport and PrevHub stay): its result or error, without events.
func (t *Model) Show(r Run) {
	t.Stop()
	t.run++
	*t = Model{env: t.env, run: t.run, Transport: t.Transport, PrevHub: t.PrevHub, regID: r.RegID, started: r.Started, elapsed: r.Elapsed, result: r.Result, err: r.Err, steps: r.Steps}
}

// RegID is the registration ID of the last run, "" before the first.
func (t *Model) RegID() string { return t.regID }

// Running reports whether a registration is under way.
func (t *Model) Running() bool { return t.running }

// Sending reports whether a telemetry message is on its way.
func (t *Model) Sending() bool { return t.sending }

// Result is the last run's registration state, nil until it ended
// without an error.
func (t *Model) Result() *dps.DeviceRegistrationState { return t.result }

// Err is why the last run failed, nil if it did not.
func (t *Model) Err() error { return t.err }

// Sent is the count of telemetry messages the hub accepted in this run.
func (t *Model) Sent() int { return t.sent }

// SendErr is the last telemetry message's error, nil if none failed.
func (t *Model) SendErr() error { return t.sendErr }

// LiveOn reports whether the device is (being) connected to its hub.
func (t *Model) LiveOn() bool { return t.liveOn }

// Start registers regID with key (payload may be nil), replacing any
// run under way.
func (t *Model) Start(regID string, key keys.Key, payload json.RawMessage) tea.Cmd {
	t.Stop()
	t.run++
	*t = Model{env: t.env, run: t.run, Transport: t.Transport, PrevHub: t.PrevHub, running: true, regID: regID, key: key, started: t.env.Now()}
	if t.env.Target == nil {
		t.running, t.err = false, errors.New("no target")
		return nil
	}
	if t.env.ReadOnly { // every simulated registration passes here
		t.running, t.err = false, ErrReadOnly
		return nil
	}
	client, err := t.env.Target.Device(t.Transport)
	if err != nil {
		t.running, t.err = false, err
		return nil
	}
	t.host = client.Host()
	ctx, cancel := context.WithCancel(t.env.Ctx)
	t.stopRun = cancel
	run := t.run
	// The registration runs in a goroutine started by the Cmd (not by
	// Update); its events come back one message at a time. Once the run is
	// stopped nobody listens, so no send may outlive ctx.
	begin := t.do(func() tea.Msg {
		ch, ended := make(chan RegisterMsg, 64), make(chan struct{})
		send := func(e RegisterMsg) {
			e.ch, e.ended = ch, ended
			select {
			case ch <- e:
			case <-ctx.Done():
			}
		}
		go func() {
			defer close(ended)
			defer close(ch)
			state, err := client.Register(ctx, regID, key, &device.RegisterOptions{Payload: payload, Progress: func(e device.Event) {
				send(RegisterMsg{run: run, ev: e})
			}})
			send(RegisterMsg{run: run, done: true, state: state, err: err})
		}()
		return <-ch
	})
	return tea.Batch(begin, t.tick())
}

// ErrReadOnly is why Start refuses under --readonly.
var ErrReadOnly = errors.New("read-only mode: a simulated registration is a write (it can move a device to another hub or reset its twin), so it is off")

// Stop cancels the running registration and the hub connection, if any:
// their view was closed or a new run replaces them.
func (t *Model) Stop() {
	if t.stopRun != nil {
		t.stopRun()
	}
	t.stopLiveLink()
}

// do runs fn off the event loop and routes its message to the owner.
// fn must work only on values captured before do is called.
func (t *Model) do(fn func() tea.Msg) tea.Cmd {
	route := t.env.Route
	return func() tea.Msg { return route(fn()) }
}

func (t *Model) listenRegister(ch <-chan RegisterMsg) tea.Cmd {
	return t.do(func() tea.Msg { return <-ch })
}

func (t *Model) tick() tea.Cmd {
	run, route := t.run, t.env.Route
	return tea.Tick(200*time.Millisecond, func(time.Time) tea.Msg { return route(TickMsg{run}) })
}

// Update handles the timeline's messages; handled is false for others.
func (t *Model) Update(msg tea.Msg) (cmd tea.Cmd, handled bool) {
	switch msg := msg.(type) {
	case RegisterMsg:
		if msg.run != t.run {
			return nil, true
		}
		if msg.done {
			t.stopRun() // the goroutine has ended; this releases its context
			t.running = false
			t.elapsed = t.env.Now().Sub(t.started)
			if msg.err != nil {
				t.err = msg.err
			} else {
				st := msg.state
				t.result = &st
			}
			return nil, true
		}
		t.events = append(t.events, msg.ev)
		if msg.ev.RetryAfter > 0 {
			t.waitTil = msg.ev.Time.Add(msg.ev.RetryAfter)
		}
		return t.listenRegister(msg.ch), true
	case LiveMsg:
		return t.updateLive(msg), true
	case TickMsg:
		if msg.run != t.run || !t.running {
			return nil, true
		}
		return t.tick(), true
	case TelemetryMsg:
		if msg.run != t.run {
			return nil, true
		}
		t.sending = false
		if msg.err != nil {
			t.sendFailed++
			t.sendErr = msg.err
		} else {
			t.sent++
		}
		return nil, true
	}
	return nil, false
}

// Finished reports whether msg is the one that ended the current run.
func (t *Model) Finished(msg tea.Msg) bool {
	e, ok := msg.(RegisterMsg)
	return ok && e.done && e.run == t.run
}

// Assigned reports whether the last run ended assigned to a hub.
func (t *Model) Assigned() bool {
	return t.result != nil && t.result.Status == dps.StatusAssigned && t.result.AssignedHub != ""
}

// SendTelemetry sends one device-to-cloud message as the assigned device.
func (t *Model) SendTelemetry() tea.Cmd {
	if t.env.ReadOnly {
		return t.env.Warn("telemetry is a write to the hub; it is off in read-only mode")
	}
	if !t.Assigned() {
		return t.env.Warn("telemetry needs an assigned device: run the registration first")
	}
	if t.sending {
		return nil
	}
	t.sending = true
	hubHost, devID, key, n := t.result.AssignedHub, t.result.DeviceID, t.key, t.sent+t.sendFailed+1
	run, ctx, target, tr := t.run, t.env.Ctx, t.env.Target, t.Transport
	return t.do(func() tea.Msg {
		client, err := target.HubDevice(hubHost, devID, key, tr)
		if err != nil {
			return TelemetryMsg{run: run, err: err}
		}
		defer client.Close()
		body := fmt.Appendf(nil, `{"message":%d,"source":"dpsconsole"}`, n)
		return TelemetryMsg{run: run, err: client.SendEvent(ctx, body, nil)}
	})
}

// View renders the timeline in width columns (at least 20): its errors
// wrap there rather than being cut.
func (t *Model) View(st *theme.Styles, width int) string {
	width = max(width, 20)
	if t.regID == "" {
		return st.Muted.Render("No registration has run yet.")
	}
	now := t.env.Now()
	at := func(ts time.Time) string {
		return st.Muted.Render(fmt.Sprintf("%+7.2fs ", ts.Sub(t.started).Seconds()))
	}
	var lines []string
	if t.steps != nil {
		for _, s := range t.steps {
			text := s.Text
			if s.Err {
				text = st.Error.Render(text)
			}
			lines = append(lines, at(s.At)+text)
		}
	} else {
		lines = append(lines, at(t.started)+"connecting to "+t.host+" as "+t.regID)
	}
	for _, e := range t.events {
		lines = append(lines, at(e.Time)+DescribeEvent(e))
	}
	if t.running && t.waitTil.After(now) {
		lines = append(lines, st.Muted.Render(fmt.Sprintf("         next poll in %.1fs (Retry-After)", t.waitTil.Sub(now).Seconds())))
	}
	switch {
	case t.result != nil:
		r := t.result
		line := fmt.Sprintf("%s → hub %s", r.Status, r.AssignedHub)
		if r.DeviceID != t.regID { // the usual device ID is the registration ID, shown above
			line += ", device " + r.DeviceID
		}
		if r.Substatus != "" {
			line += ", substatus " + string(r.Substatus)
		}
		line += fmt.Sprintf(", in %.2fs", t.elapsed.Seconds())
		if r.Status == dps.StatusAssigned {
			lines = append(lines, st.OK.Render("✓ "+line))
			if m := reprovisionNote(r.Substatus, t.PrevHub, r.AssignedHub); m != "" {
				lines = append(lines, st.Muted.Render("  "+m))
			}
		} else {
			lines = append(lines, st.Error.Width(width).Render("✗ "+line))
		}
	case t.err != nil:
		// Wrapped, not cut: the advice at the end is the useful part.
		msg := fmt.Sprintf("✗ %s (after %.2fs)", ErrorText(t.err), t.elapsed.Seconds())
		lines = append(lines, st.Error.Width(max(width-2, 20)).Render(msg))
	case t.running:
		lines = append(lines, st.Muted.Render("         waiting…"))
	}
	if t.Assigned() {
		s := fmt.Sprintf("Telemetry: %d sent", t.sent)
		if t.sendFailed > 0 {
			s += fmt.Sprintf(", %d failed (%s)", t.sendFailed, t.sendErr)
		}
		if t.sending {
			s += " …"
		}
		lines = append(lines, "", s+st.Muted.Render("   ctrl+t sends a message"))
	}
	lines = append(lines, t.liveView(st, width, at)...)
	return strings.Join(lines, "\n")
}

// reprovisionNote says in words what DPS did to an assigned device, given
// the hub it was on before ("" for none) and the one it is on now.
func reprovisionNote(s dps.Substatus, from, to string) string {
	moved := ""
	if from != "" && !strings.EqualFold(from, to) {
		moved = "moved from " + from + " to " + to + ", "
	}
	switch s {
	case dps.SubstatusInitialAssignment:
		if from == "" {
			return "" // the name says it; the tutorial's timeline has no line to spare
		}
		return moved + "the record keeps how the device was first assigned"
	case dps.SubstatusDeviceDataMigrated:
		return moved + "twin migrated (the device keeps the twin it had)"
	case dps.SubstatusDeviceDataReset:
		return moved + "twin reset to the initial twin"
	case dps.SubstatusReprovisionedToInitialAssignment:
		return moved + "reprovisioned to its initial assignment"
	}
	return ""
}

// ErrorText is a registration error in words: the device client's own
// wording, which says what the refusal usually means for a device, or the
// service's for other errors.
func ErrorText(err error) string {
	var de *device.Error
	if errors.As(err, &de) {
		return de.Error()
	}
	return dps.ErrorMessage(err)
}

// DescribeEvent is one line of a registration's progress.
func DescribeEvent(e device.Event) string {
	var s string
	switch e.Step {
	case device.StepConnecting:
		s = "MQTT CONNECT to " + e.Endpoint
	case device.StepConnected:
		s = "CONNACK 0: connected"
	case device.StepSubscribed:
		s = fmt.Sprintf("SUBSCRIBE %s: granted QoS %d", e.Topic, e.QoS)
	case device.StepRequestSent:
		s = "register request sent" + e.OnTopic()
	case device.StepAccepted:
		s = fmt.Sprintf("accepted (%s): operation %s, %s", e.Answer(), e.OperationID, e.Status)
	case device.StepPollSent:
		s = fmt.Sprintf("poll %d sent%s", e.Poll, e.OnTopic())
	case device.StepPollWait:
		s = fmt.Sprintf("holding poll %d to stay under 5 polls in 10s", e.Poll)
	case device.StepPolled:
		s = fmt.Sprintf("poll %d: %s (%s)", e.Poll, e.Status, e.Answer())
	case device.StepRetry:
		s = fmt.Sprintf("%s: DPS is busy, sending again", e.Answer())
	case device.StepResult:
		s = fmt.Sprintf("result: %s", e.Status)
	case device.StepError: // the full reason follows on the result line
		s = fmt.Sprintf("request failed (%s)", e.Answer())
		if e.HTTPStatus == 0 && e.Err != nil {
			s = "request failed: " + e.Err.Error()
		}
	default:
		s = string(e.Step)
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", Retry-After %s", e.RetryAfter)
	}
	return s
}
