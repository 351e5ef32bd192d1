package timeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// The simulated device can stay connected to its hub after it registered:
// it shows each desired-property change and answers each direct method
// (hub.EchoAnswer), so an operator sees both sides at once.

// LiveMsg is one thing the connected device saw; the first one reports
// the connection (or its error), done that the connection ended.
type LiveMsg struct {
	run, gen int
	ch       <-chan LiveMsg
	ctx      context.Context
	at       time.Time
	up       bool
	patch    *hub.DesiredPatch
	call     *hub.MethodCall
	answer   hub.MethodResponse
	err      error
	done     bool
}

// liveLinesShown caps the device's lines on screen: only the newest show.
const liveLinesShown = 8

// errLiveNeedsMQTT is why ToggleLive refuses a device on HTTPS.
var errLiveNeedsMQTT = errors.New("the twin and direct methods need MQTT to the hub (IoT Hub's HTTPS device API has neither): set Transport to mqtt or mqtt-ws and run the registration again")

// ToggleLive connects the assigned device to its hub and keeps it
// connected until the run is stopped; called while connected it
// disconnects.
func (t *Model) ToggleLive() tea.Cmd {
	switch {
	case t.env.ReadOnly:
		return t.env.Warn("answering methods is a write to the hub; it is off in read-only mode")
	case t.liveOn:
		t.stopLiveLink()
		t.liveGen++
		t.liveOn, t.liveUp = false, false
		t.live = append(t.live, liveLine{at: t.env.Now(), text: "disconnected"})
		return nil
	case !t.Assigned():
		return t.env.Warn("the twin and methods need an assigned device: run the registration first")
	case !t.OverMQTT():
		return t.env.Warn(errLiveNeedsMQTT.Error())
	}
	t.liveGen++
	t.liveOn = true
	ctx, cancel := context.WithCancel(t.env.Ctx)
	t.stopLive = cancel
	run, gen, target, tr := t.run, t.liveGen, t.env.Target, t.Transport
	hubHost, devID, key := t.result.AssignedHub, t.result.DeviceID, t.key
	t.live = append(t.live, liveLine{at: t.env.Now(), text: "connecting to " + hubHost + " as " + devID + " over " + string(tr)})
	return t.do(func() tea.Msg {
		ev := func(e LiveMsg) LiveMsg { e.run, e.gen, e.at = run, gen, time.Now(); return e }
		client, err := target.HubDevice(hubHost, devID, key, tr)
		if err != nil {
			return ev(LiveMsg{err: err, done: true})
		}
		ch := make(chan LiveMsg, 64)
		send := func(e LiveMsg) {
			e = ev(e)
			e.ch, e.ctx = ch, ctx
			select {
			case ch <- e:
			case <-ctx.Done():
			}
		}
		watch, err := client.WatchDesired(ctx)
		if err == nil {
			err = client.OnMethod(ctx, func(_ context.Context, c hub.MethodCall) hub.MethodResponse {
				res := hub.EchoAnswer(c)
				send(LiveMsg{call: &c, answer: res})
				return res
			})
		}
		if err != nil {
			client.Close()
			return ev(LiveMsg{err: err, done: true})
		}
		go func() {
			defer client.Close() // the watch ends with ctx: the view closed, a new run, or a disconnect
			for p := range watch {
				send(LiveMsg{patch: &p})
			}
		}()
		e := ev(LiveMsg{up: true})
		e.ch, e.ctx = ch, ctx
		return e
	})
}

// OverMQTT reports whether the run's device talks MQTT to its hub, which
// ToggleLive needs.
func (t *Model) OverMQTT() bool {
	return t.Transport != "" && t.Transport != device.TransportHTTPS
}

// listenLive waits for the connected device's next event; once the
// connection is stopped it reports that instead.
func (t *Model) listenLive(e LiveMsg) tea.Cmd {
	ch, ctx, run, gen := e.ch, e.ctx, e.run, e.gen
	return t.do(func() tea.Msg {
		select {
		case next := <-ch:
			return next
		case <-ctx.Done():
			return LiveMsg{run: run, gen: gen, done: true}
		}
	})
}

func (t *Model) stopLiveLink() {
	if t.stopLive != nil {
		t.stopLive()
	}
}

// liveLine is one line of the connected device in the timeline.
type liveLine struct {
	at   time.Time
	text string
	err  bool
}

// updateLive takes one event of the connected device; old ones (another
// run or connection) are dropped.
func (t *Model) updateLive(e LiveMsg) tea.Cmd {
	if e.run != t.run || e.gen != t.liveGen {
		return nil
	}
	switch {
	case e.err != nil:
		t.liveOn, t.liveUp = false, false
		t.stopLiveLink()
		t.live = append(t.live, liveLine{at: e.at, text: "✗ " + dps.ErrorMessage(e.err), err: true})
		return nil
	case e.done:
		t.liveOn, t.liveUp = false, false
		return nil
	case e.up:
		t.liveUp = true
		t.live = append(t.live, liveLine{at: e.at, text: "connected: answering direct methods and showing desired-property changes"})
	case e.patch != nil:
		what := "desired properties changed"
		if e.patch.Full {
			what = "desired properties"
		}
		t.live = append(t.live, liveLine{at: e.at, text: fmt.Sprintf("%s ($version %d): %s", what, e.patch.Version, e.patch.Properties.Compact())})
	case e.call != nil:
		t.live = append(t.live, liveLine{at: e.at, text: fmt.Sprintf("direct method %q called with %s: answered %d %s", e.call.Name, e.call.Payload, e.answer.Status, e.answer.Payload)})
	}
	return t.listenLive(e)
}

// liveView renders the connected device's newest lines.
func (t *Model) liveView(st *theme.Styles, width int, at func(time.Time) string) []string {
	if len(t.live) == 0 {
		return nil
	}
	lines := []string{""}
	shown := t.live[max(len(t.live)-liveLinesShown, 0):]
	if len(shown) < len(t.live) {
		lines = append(lines, st.Muted.Render(fmt.Sprintf("         … %d earlier", len(t.live)-len(shown))))
	}
	for _, l := range shown {
		text := l.text
		if l.err { // wrapped, not cut: the advice at the end is the useful part
			text = st.Error.Width(max(width-9, 20)).Render(text)
		}
		lines = append(lines, at(l.at)+text)
	}
	return lines
}
