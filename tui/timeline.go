package tui

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
	"github.com/dpsconsole/dpsconsole/keys"
)

// registerEvent is one progress event of a running registration; the
// last one has done set and carries the result.
type registerEvent struct {
	run   int
	ch    <-chan registerEvent
	ev    device.Event
	done  bool
	state dps.DeviceRegistrationState
	err   error
}

// countdownTick redraws the Retry-After countdown while a run is live.
type countdownTick struct{ run int }

// telemetrySent reports one telemetry message.
type telemetrySent struct {
	run int
	err error
}

// timeline runs one simulated registration and renders it live: connecting,
// request sent, operation id, each poll with its Retry-After countdown, and
// the result. Simulate and the tutorial both use it.
type timeline struct {
	c       *Common
	owner   int
	indent  int                // columns the owner indents it by: its errors wrap that much narrower
	run     int                // generation: a new run drops events of the old one
	stopRun context.CancelFunc // ends the current run's goroutine; see stop
	running bool
	// transport is how the next run registers and sends telemetry; the
	// view sets it before start.
	transport device.Transport
	host      string
	// prevHub is the hub the device was on before this run, "" when it had
	// none (or nobody knows); the view sets it before start, so the result
	// can say whether DPS moved the device.
	prevHub string
	regID   string
	key     keys.Key
	started time.Time
	events  []device.Event
	waitTil time.Time // end of the current Retry-After, for the countdown
	result  *dps.DeviceRegistrationState
	err     error
	elapsed time.Duration

	sent, sendFailed int
	sending          bool
	sendErr          error

	// The device's connection to its hub after the run (simlive.go):
	// liveGen drops the events of an earlier connection of the same run.
	liveGen        int
	liveOn, liveUp bool
	stopLive       context.CancelFunc
	live           []liveLine
}

func newTimeline(c *Common, owner int) *timeline { return &timeline{c: c, owner: owner} }

// width is the columns the timeline has, once its owner indented it.
func (t *timeline) width() int { return max(t.c.Width-t.indent, 20) }

// start registers regID with key (payload may be nil).
func (t *timeline) start(regID string, key keys.Key, payload json.RawMessage) tea.Cmd {
	t.stop()
	t.run++
	*t = timeline{c: t.c, owner: t.owner, indent: t.indent, run: t.run, transport: t.transport, prevHub: t.prevHub, running: true, regID: regID, key: key, started: t.c.Now()}
	if t.c.Target == nil {
		t.running, t.err = false, errors.New("no target")
		return nil
	}
	if t.c.ReadOnly { // every simulated registration passes here
		t.running, t.err = false, errReadOnlyRegister
		return nil
	}
	client, err := t.c.Target.Device(t.transport)
	if err != nil {
		t.running, t.err = false, err
		return nil
	}
	t.host = client.Host()
	ctx, cancel := context.WithCancel(t.c.Ctx)
	t.stopRun = cancel
	run, owner := t.run, t.owner
	// The registration runs in a goroutine started by the Cmd (not by
	// Update); its events come back one message at a time. Once the run is
	// stopped nobody listens, so no send may outlive ctx.
	begin := do(owner, func() tea.Msg {
		ch := make(chan registerEvent, 64)
		send := func(e registerEvent) {
			select {
			case ch <- e:
			case <-ctx.Done():
			}
		}
		go func() {
			defer close(ch)
			state, err := client.Register(ctx, regID, key, &device.RegisterOptions{Payload: payload, Progress: func(e device.Event) {
				send(registerEvent{run: run, ch: ch, ev: e})
			}})
			send(registerEvent{run: run, ch: ch, done: true, state: state, err: err})
		}()
		return <-ch
	})
	return tea.Batch(begin, t.tick())
}

var errReadOnlyRegister = errors.New("read-only mode: a simulated registration is a write (it can move a device to another hub or reset its twin), so it is off")

// stop cancels the running registration, if any: its view was closed or a
// new run replaces it.
func (t *timeline) stop() {
	if t.stopRun != nil {
		t.stopRun()
	}
	t.stopLiveLink()
}

func listenRegister(owner int, ch <-chan registerEvent) tea.Cmd {
	return do(owner, func() tea.Msg { return <-ch })
}

func (t *timeline) tick() tea.Cmd {
	run, owner := t.run, t.owner
	return tea.Tick(200*time.Millisecond, func(time.Time) tea.Msg { return routed{to: owner, msg: countdownTick{run}} })
}

// update handles the timeline's messages; handled is false for others.
func (t *timeline) update(msg tea.Msg) (tea.Cmd, bool) {
	switch msg := msg.(type) {
	case registerEvent:
		if msg.run != t.run {
			return nil, true
		}
		if msg.done {
			t.stopRun() // the goroutine has ended; this releases its context
			t.running = false
			t.elapsed = t.c.Now().Sub(t.started)
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
		return listenRegister(t.owner, msg.ch), true
	case liveEvent:
		return t.updateLive(msg), true
	case countdownTick:
		if msg.run != t.run || !t.running {
			return nil, true
		}
		return t.tick(), true
	case telemetrySent:
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

// assigned reports whether the last run ended assigned to a hub.
func (t *timeline) assigned() bool {
	return t.result != nil && t.result.Status == dps.StatusAssigned && t.result.AssignedHub != ""
}

// sendTelemetry sends one device-to-cloud message as the assigned device.
func (t *timeline) sendTelemetry() tea.Cmd {
	if t.c.ReadOnly {
		return flashWarn("telemetry is a write to the hub; it is off in read-only mode")
	}
	if !t.assigned() {
		return flashWarn("telemetry needs an assigned device: run the registration first")
	}
	if t.sending {
		return nil
	}
	t.sending = true
	hubHost, devID, key, n := t.result.AssignedHub, t.result.DeviceID, t.key, t.sent+t.sendFailed+1
	run, ctx, target, tr := t.run, t.c.Ctx, t.c.Target, t.transport
	return do(t.owner, func() tea.Msg {
		client, err := target.HubDevice(hubHost, devID, key, tr)
		if err != nil {
			return telemetrySent{run: run, err: err}
		}
		defer client.Close()
		body := fmt.Appendf(nil, `{"message":%d,"source":"dpsconsole"}`, n)
		return telemetrySent{run: run, err: client.SendEvent(ctx, body, nil)}
	})
}

func (t *timeline) view() string {
	st := t.c.Styles
	if t.regID == "" {
		return st.Muted.Render("No registration has run yet.")
	}
	at := func(ts time.Time) string {
		return st.Muted.Render(fmt.Sprintf("%+7.2fs ", ts.Sub(t.started).Seconds()))
	}
	lines := []string{at(t.started) + "connecting to " + t.host + " as " + t.regID}
	for _, e := range t.events {
		lines = append(lines, at(e.Time)+describeEvent(e))
	}
	if t.running && t.waitTil.After(t.c.Now()) {
		lines = append(lines, st.Muted.Render(fmt.Sprintf("         next poll in %.1fs (Retry-After)", t.waitTil.Sub(t.c.Now()).Seconds())))
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
			if m := reprovisionNote(r.Substatus, t.prevHub, r.AssignedHub); m != "" {
				lines = append(lines, st.Muted.Render("  "+m))
			}
		} else {
			lines = append(lines, st.Error.Width(t.width()).Render("✗ "+line))
		}
	case t.err != nil:
		// Wrapped, not cut: the advice at the end is the useful part.
		msg := fmt.Sprintf("✗ %s (after %.2fs)", registerErrorText(t.err), t.elapsed.Seconds())
		lines = append(lines, st.Error.Width(max(t.width()-2, 20)).Render(msg))
	case t.running:
		lines = append(lines, st.Muted.Render("         waiting…"))
	}
	if t.assigned() {
		s := fmt.Sprintf("Telemetry: %d sent", t.sent)
		if t.sendFailed > 0 {
			s += fmt.Sprintf(", %d failed (%s)", t.sendFailed, t.sendErr)
		}
		if t.sending {
			s += " …"
		}
		lines = append(lines, "", s+st.Muted.Render("   ctrl+t sends a message"))
	}
	lines = append(lines, t.liveView(at)...)
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

// registerErrorText prefers the device client's own wording, which says
// what the refusal usually means for a device; other errors are service ones.
func registerErrorText(err error) string {
	var de *device.Error
	if errors.As(err, &de) {
		return de.Error()
	}
	return dps.ErrorMessage(err)
}

func describeEvent(e device.Event) string {
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
