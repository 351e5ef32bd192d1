package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
	"github.com/dpsconsole/dpsconsole/tui/components/form"
	"github.com/dpsconsole/dpsconsole/tui/components/timeline"
)

// Simulate fields.
const (
	sfGroup = iota
	sfDeviceKey
	sfRegID
	sfPayload
	sfTransport // after the payload, where enter runs the registration; tab reaches it
)

// simulateView registers a simulated device and shows it live.
type simulateView struct {
	c         *Common
	vid       int
	f         *form.Form
	tl        *timeline.Model
	err       string
	preparing bool
	prepGen   int
	// confirm asks before re-registering an ID that has a record; ownID is
	// the ID this view registered (or was told yes for): no need to ask again.
	confirm *confirm.Dialog
	ownID   string
}

// keyReadyMsg carries the device key once derived from the group's key.
type keyReadyMsg struct {
	gen       int
	regID     string
	key       keys.Key
	payload   json.RawMessage
	transport device.Transport
	err       error
	// existing is the ID's record, when it has one.
	existing *existingRecord
}

func newSimulateView(c *Common, groupID, regID string) *simulateView {
	v := &simulateView{c: c, vid: c.newID(), f: newForm(c, "Group ID", "Device key", "Registration ID", "Payload", "Transport")}
	v.tl = newTimeline(c, v.vid)
	v.f.Inputs[sfGroup].Placeholder = "derive the key from this group's primary key"
	v.f.Inputs[sfDeviceKey].Placeholder = "or paste a device key (overrides the group)"
	v.f.Inputs[sfDeviceKey].EchoMode = textinput.EchoPassword
	v.f.Inputs[sfPayload].Placeholder = `optional JSON, e.g. {"model":"x1"}`
	v.f.Inputs[sfTransport].Placeholder = "https (default), mqtt or mqtt-ws (←/→ pick); telemetry follows it"
	v.f.Set(sfGroup, groupID)
	v.f.Set(sfRegID, regID)
	return v
}

func (v *simulateView) id() int          { return v.vid }
func (v *simulateView) Title() string    { return "Simulate device" }
func (v *simulateView) Editing() bool    { return v.f.Editing() || v.confirm != nil }
func (v *simulateView) Busy() bool       { return v.preparing || v.tl.Running() || v.tl.Sending() }
func (v *simulateView) Status() string   { return "" }
func (v *simulateView) SetSize(w, _ int) { v.f.SetWidth(min(w-22, 80)) }

func (v *simulateView) Hints() []*Binding {
	k := v.c.Keys
	switch {
	case v.confirm != nil:
		return nil // the dialog lists its keys
	case v.f.Editing():
		return []*Binding{k.Submit, k.NextField, k.Telemetry, k.StayConnected, k.Leave}
	}
	return []*Binding{k.Submit, k.NextField, k.Telemetry, k.StayConnected}
}

// Stop cancels a registration still running when the view is closed.
func (v *simulateView) Stop() { v.tl.Stop() }

func (v *simulateView) Init() tea.Cmd {
	if v.f.Value(sfRegID) == "" {
		if v.f.Value(sfGroup) == "" {
			return v.f.FocusOn(sfGroup)
		}
		return v.f.FocusOn(sfRegID)
	}
	return nil
}

func (v *simulateView) Update(msg tea.Msg) tea.Cmd {
	if cmd, ok := v.tl.Update(msg); ok {
		if v.tl.Finished(msg) {
			cmd = tea.Batch(cmd, recordsChanged(v.vid, v.registeredGroup())) // its record changed
		}
		return cmd
	}
	switch msg := msg.(type) {
	case keyReadyMsg:
		if msg.gen != v.prepGen {
			return nil
		}
		v.preparing = false
		if msg.err != nil {
			v.err = dps.ErrorMessage(msg.err)
			return nil
		}
		prev := ""
		switch {
		case msg.existing != nil && msg.existing.record.Status == dps.StatusAssigned:
			prev = msg.existing.record.AssignedHub
		case msg.regID == v.ownID && v.tl.Assigned():
			prev = v.tl.Result().AssignedHub
		}
		start := func() tea.Cmd {
			v.ownID = msg.regID
			v.tl.PrevHub = prev
			v.tl.Transport = msg.transport // set as the run starts: the last run's telemetry keeps its transport until then
			return v.tl.Start(msg.regID, msg.key, msg.payload)
		}
		if msg.existing != nil {
			v.confirm = askReRegister(msg.existing, start)
			return nil
		}
		return start()
	case tea.PasteMsg:
		cmd, _ := v.f.Paste(msg)
		return cmd
	case tea.KeyPressMsg:
		if v.confirm != nil {
			c := v.confirm
			v.confirm = nil
			return answer(c, msg)
		}
		k := v.c.Keys
		switch {
		case k.Telemetry.Matches(msg):
			return v.tl.SendTelemetry()
		case k.StayConnected.Matches(msg):
			return v.tl.ToggleLive()
		case msg.String() == "enter" && (!v.f.Editing() || v.f.Focus() >= sfPayload):
			v.f.FocusOn(-1)
			return v.run()
		case msg.String() == "enter":
			return v.f.FocusOn(v.f.Focus() + 1)
		case v.f.Focus() == sfTransport && (msg.String() == "left" || msg.String() == "right"):
			v.f.Set(sfTransport, string(nextTransport(v.f.Value(sfTransport), msg.String() == "right")))
			return nil
		}
		cmd, _ := v.f.Update(msg)
		return cmd
	}
	return nil
}

// registeredGroup is the group the run registered into, "" when a pasted
// device key may belong to any enrollment.
func (v *simulateView) registeredGroup() string {
	if v.f.Value(sfDeviceKey) != "" {
		return ""
	}
	return v.f.Value(sfGroup)
}

// run validates the fields and starts a registration; the group's key is
// fetched and the device key derived off the event loop.
func (v *simulateView) run() tea.Cmd {
	if v.c.ReadOnly {
		v.err = timeline.ErrReadOnly.Error()
		return nil
	}
	if v.tl.Running() || v.preparing {
		return flashWarn("a registration is already running")
	}
	v.err = ""
	tr, err := device.ParseTransport(v.f.Value(sfTransport))
	if err != nil {
		v.err = "Transport: " + err.Error()
		return nil
	}
	regID := v.f.Value(sfRegID)
	if err := keys.ValidateRegistrationID(regID); err != nil {
		v.err = "Registration ID: " + err.Error()
		return nil
	}
	var payload json.RawMessage
	if p := v.f.Value(sfPayload); p != "" {
		if !json.Valid([]byte(p)) {
			v.err = "Payload: not valid JSON"
			return nil
		}
		payload = json.RawMessage(p)
	}
	groupID := v.f.Value(sfGroup)
	var pasted keys.Key
	if s := v.f.Value(sfDeviceKey); s != "" {
		key, err := keys.ParseKey(s)
		if err != nil {
			v.err = "Device key: " + err.Error()
			return nil
		}
		pasted, groupID = key, "" // the pasted key overrides the group
	} else if groupID == "" {
		v.err = "give a group ID to derive the device key from, or paste a device key"
		return nil
	}
	v.prepGen++
	v.preparing = true
	gen, svc, ctx, own := v.prepGen, v.c.Target.Service, v.c.Ctx, regID == v.ownID
	return do(v.vid, func() tea.Msg {
		key, err := pasted, error(nil)
		if key.IsZero() {
			key, err = groupDeviceKey(ctx, svc, groupID, regID)
		}
		msg := keyReadyMsg{gen: gen, regID: regID, key: key, payload: payload, transport: tr, err: err}
		if err == nil && !own {
			msg.existing, msg.err = findExisting(ctx, svc, groupID, regID)
		}
		return msg
	})
}

func (v *simulateView) View() string {
	st := v.c.Styles
	if v.confirm != nil {
		return v.confirm.View(v.c.Styles, v.c.Width)
	}
	var lines []string
	for i := range v.f.Inputs {
		lines = append(lines, v.f.Row(i, 16, ""))
	}
	if v.err != "" {
		lines = append(lines, "", errorText(v.c, v.err))
	}
	if v.preparing {
		lines = append(lines, "", st.Muted.Render("deriving the device key and checking for an existing record…"))
	}
	lines = append(lines, "", st.Title.Render("Timeline"), v.tl.View(v.c.Styles, v.c.Width))
	if !v.tl.Running() && v.tl.RegID() != "" {
		again := "enter runs it again"
		if v.tl.Assigned() { // only a device that registered reprovisions; on the same hub it keeps its substatus
			again = "enter re-registers it (the substatus says if DPS moved or reset it)"
		}
		switch {
		case v.c.Keys.StayConnected.DisabledReason() != "":
		case v.tl.LiveOn():
			again += "; ctrl+o disconnects the device"
		case v.tl.Assigned() && v.tl.OverMQTT():
			again += "; ctrl+o keeps it connected (twin, methods)"
		}
		lines = append(lines, "", st.Muted.Render(again))
	}
	return strings.Join(lines, "\n")
}

// nextTransport is the transport after (or before) the one named s, in
// the order https, mqtt, mqtt-ws; an unknown name starts over at https.
func nextTransport(s string, forward bool) device.Transport {
	all := device.Transports
	i := slices.Index(all, device.Transport(strings.ToLower(s)))
	switch {
	case i < 0:
		return all[0]
	case forward:
		return all[(i+1)%len(all)]
	}
	return all[(i+len(all)-1)%len(all)]
}

// groupDeviceKey derives regID's device key from the group's primary key.
func groupDeviceKey(ctx context.Context, svc *dps.Client, groupID, regID string) (keys.Key, error) {
	gk, err := groupKey(ctx, svc, groupID, false)
	if err != nil {
		return keys.Key{}, err
	}
	return keys.DeriveDeviceKey(gk, regID)
}

// groupKey reads a group's primary key through the service API.
func groupKey(ctx context.Context, svc *dps.Client, groupID string, secondary bool) (keys.Key, error) {
	att, err := svc.GetEnrollmentGroupAttestation(ctx, groupID)
	if err != nil {
		return keys.Key{}, fmt.Errorf("reading the keys of group %s: %w", groupID, err)
	}
	if att.SymmetricKey == nil {
		return keys.Key{}, errors.New("group " + groupID + " has no symmetric keys, so no device key derives from it; paste a device key instead")
	}
	if secondary {
		return keys.ParseKey(att.SymmetricKey.SecondaryKey.Reveal())
	}
	return keys.ParseKey(att.SymmetricKey.PrimaryKey.Reveal())
}

// newTimeline is a timeline whose messages reach view owner. Target and
// ReadOnly never change at run time, so its environment is built once.
func newTimeline(c *Common, owner int) *timeline.Model {
	env := timeline.Env{
		Ctx: c.Ctx, Now: func() time.Time { return c.Now() }, ReadOnly: c.ReadOnly,
		Route: func(msg tea.Msg) tea.Msg { return routed{to: owner, msg: msg} },
		Warn:  flashWarn,
	}
	if c.Target != nil { // a nil *Target in the interface would not be nil
		env.Target = c.Target
	}
	return timeline.New(env)
}
