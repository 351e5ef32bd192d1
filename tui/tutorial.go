package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// The tutorial's steps, in order.
const (
	stepCreateGroup = iota
	stepChooseID
	stepDerive
	stepProvision
	stepTelemetry
	stepConfirm
	stepCleanUp
	stepCount
)

var stepTitles = [stepCount]string{
	"Create a symmetric-key enrollment group",
	"Choose a registration ID",
	"Derive the device key",
	"Provision the simulated device",
	"Send telemetry",
	"Confirm the registration record",
	"Clean up: records first, then the group, then the hub device",
}

// tutorialDefaultID is the tutorial's own example registration ID.
const tutorialDefaultID = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"

// tutorialView walks the symmetric-key tutorial step by step, each step
// done for real against the live target; values carry between steps.
type tutorialView struct {
	c       *Common
	vid     int
	current int
	done    [stepCount]bool
	notes   [stepCount]string
	failed  string
	working bool

	groupID   string
	groupKey  keys.Key
	regID     textinput.Model
	deviceKey keys.Key
	tl        *timeline
	record    *dps.DeviceRegistrationState
}

type tutorialStepMsg struct {
	step     int
	note     string
	err      error
	groupKey keys.Key
	record   *dps.DeviceRegistrationState
}

func newTutorialView(c *Common) *tutorialView {
	v := &tutorialView{c: c, vid: c.newID()}
	v.tl = newTimeline(c, v.vid)
	v.regID = textinput.New()
	v.regID.Prompt = ""
	v.regID.SetValue(tutorialDefaultID)
	v.regID.SetWidth(50)
	return v
}

func (v *tutorialView) id() int       { return v.vid }
func (v *tutorialView) Title() string { return "Tutorial: symmetric-key group" }
func (v *tutorialView) Editing() bool { return v.regID.Focused() }
func (v *tutorialView) Busy() bool    { return v.working || v.tl.running || v.tl.sending }
func (v *tutorialView) Status() string {
	return fmt.Sprintf("step %d/%d", min(v.current+1, stepCount), stepCount)
}
func (v *tutorialView) SetSize(w, _ int) {
	v.regID.SetWidth(min(max(w-30, 10), 60))
}
func (v *tutorialView) Hints() []*Binding { return []*Binding{v.c.Keys.Submit} }

// Stop cancels a registration still running when the view is closed.
func (v *tutorialView) Stop() { v.tl.stop() }

func (v *tutorialView) Init() tea.Cmd { return nil }

func (v *tutorialView) Update(msg tea.Msg) tea.Cmd {
	if cmd, ok := v.tl.update(msg); ok {
		return tea.Batch(cmd, v.checkTimeline())
	}
	switch msg := msg.(type) {
	case tutorialStepMsg:
		v.working = false
		if msg.err != nil {
			v.failed = dps.ErrorMessage(msg.err)
			return nil
		}
		if !msg.groupKey.IsZero() {
			v.groupKey = msg.groupKey
		}
		if msg.record != nil {
			v.record = msg.record
		}
		return v.complete(msg.step, msg.note)
	case tea.PasteMsg:
		if v.regID.Focused() {
			var cmd tea.Cmd
			v.regID, cmd = v.regID.Update(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		if v.regID.Focused() {
			switch msg.String() {
			case "enter":
				return v.chooseID()
			case "esc":
				v.regID.Blur()
				return nil
			}
			var cmd tea.Cmd
			v.regID, cmd = v.regID.Update(msg)
			return cmd
		}
		switch {
		case v.c.Keys.Telemetry.Matches(msg) && v.current > stepTelemetry:
			return v.tl.sendTelemetry()
		case v.c.Keys.Submit.Matches(msg):
			return v.runStep()
		}
	}
	return nil
}

func (v *tutorialView) complete(step int, note string) tea.Cmd {
	v.done[step], v.notes[step], v.failed = true, note, ""
	if step == v.current {
		v.current++
	}
	if v.current == stepChooseID {
		return v.regID.Focus()
	}
	if v.current == stepCount {
		return flash("tutorial complete: everything it created is gone")
	}
	return nil
}

// checkTimeline ticks the provisioning and telemetry steps off.
func (v *tutorialView) checkTimeline() tea.Cmd {
	switch {
	case v.current == stepProvision && !v.tl.running && v.tl.regID != "":
		if v.tl.assigned() {
			r := v.tl.result
			return v.complete(stepProvision, fmt.Sprintf("assigned to %s as %s (%s)", r.AssignedHub, r.DeviceID, r.Substatus))
		}
		if v.tl.err != nil {
			v.failed = registerErrorText(v.tl.err)
		}
	case v.current == stepTelemetry && v.tl.sent > 0:
		return v.complete(stepTelemetry, fmt.Sprintf("%d message(s) accepted by %s", v.tl.sent, v.tl.result.AssignedHub))
	case v.current == stepTelemetry && v.tl.sendErr != nil:
		v.failed = v.tl.sendErr.Error()
	}
	return nil
}

func (v *tutorialView) chooseID() tea.Cmd {
	id := v.regID.Value()
	if err := keys.ValidateRegistrationID(id); err != nil {
		v.failed = err.Error()
		return nil
	}
	v.regID.Blur()
	note := id
	if w := keys.RegistrationIDWarning(id); w != "" {
		note += "  ⚠ " + w
	}
	return v.complete(stepChooseID, note)
}

// runStep does the current step for real.
func (v *tutorialView) runStep() tea.Cmd {
	if v.c.ReadOnly {
		return flashWarn("the tutorial creates and deletes things on the target; it is off in read-only mode")
	}
	if v.working || v.tl.running || v.current >= stepCount {
		return nil
	}
	v.failed = ""
	svc, ctx, target := v.c.Target.Service, v.c.Ctx, v.c.Target
	switch v.current {
	case stepCreateGroup:
		v.working = true
		id := fmt.Sprintf("dpsconsole-tutorial-%d", v.c.Now().Unix()%1000000)
		v.groupID = id
		return do(v.vid, func() tea.Msg {
			key := keys.GenerateKey()
			g := dps.EnrollmentGroup{EnrollmentGroupID: id, ProvisioningStatus: dps.ProvisioningEnabled, AllocationPolicy: dps.AllocationHashed,
				Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
					PrimaryKey: dps.Secret(key.Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}},
				ReprovisionPolicy: &dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}}
			if _, err := svc.CreateOrUpdateEnrollmentGroup(ctx, g, nil); err != nil {
				return tutorialStepMsg{step: stepCreateGroup, err: err}
			}
			return tutorialStepMsg{step: stepCreateGroup, groupKey: key, note: "created group " + id + " (hashed over every linked hub)"}
		})
	case stepChooseID:
		return v.regID.Focus()
	case stepDerive:
		dk, err := keys.DeriveDeviceKey(v.groupKey, v.regID.Value())
		if err != nil {
			v.failed = err.Error()
			return nil
		}
		v.deviceKey = dk
		return v.complete(stepDerive, "device key "+dk.Base64())
	case stepProvision:
		return v.tl.start(v.regID.Value(), v.deviceKey, nil)
	case stepTelemetry:
		return v.tl.sendTelemetry()
	case stepConfirm:
		v.working = true
		id := v.regID.Value()
		return do(v.vid, func() tea.Msg {
			r, err := svc.GetRegistrationState(ctx, id)
			if err != nil {
				return tutorialStepMsg{step: stepConfirm, err: err}
			}
			if r.Status != dps.StatusAssigned {
				return tutorialStepMsg{step: stepConfirm, err: fmt.Errorf("the record of %s says %s, not assigned", id, r.Status)}
			}
			return tutorialStepMsg{step: stepConfirm, record: &r,
				note: fmt.Sprintf("record %s: %s to %s, updated %s", id, r.Status, r.AssignedHub, stamp(r.LastUpdatedDateTimeUTC))}
		})
	case stepCleanUp:
		v.working = true
		regID, groupID := v.regID.Value(), v.groupID
		var hubHost, deviceID string
		if r := v.tl.result; r != nil {
			hubHost, deviceID = r.AssignedHub, r.DeviceID
		}
		return do(v.vid, func() tea.Msg {
			if err := svc.DeleteRegistrationState(ctx, regID, nil); err != nil && !dps.IsNotFound(err) {
				return tutorialStepMsg{step: stepCleanUp, err: fmt.Errorf("deleting the registration record: %w", err)}
			}
			if err := svc.DeleteEnrollmentGroup(ctx, groupID, nil); err != nil && !dps.IsNotFound(err) {
				return tutorialStepMsg{step: stepCleanUp, err: fmt.Errorf("deleting the group: %w", err)}
			}
			note := "deleted the record and the group"
			if hubHost != "" {
				reg, err := target.Registry(hubHost)
				if err != nil {
					return tutorialStepMsg{step: stepCleanUp, err: err}
				}
				if err := reg.DeleteDevice(ctx, deviceID, nil); err != nil && !hub.IsNotFound(err) {
					return tutorialStepMsg{step: stepCleanUp, err: fmt.Errorf("deleting device %s from %s: %w", deviceID, hubHost, err)}
				}
				note += ", then device " + deviceID + " from " + hubHost
			}
			return tutorialStepMsg{step: stepCleanUp, note: note}
		})
	}
	return nil
}

func (v *tutorialView) View() string {
	st := v.c.Styles
	var lines []string
	if v.c.ReadOnly {
		lines = append(lines, st.Warning.Render("Read-only mode: the tutorial creates and deletes things, so its steps are off."), "")
	}
	for i := range stepCount {
		box := "[ ]"
		style := st.Muted
		switch {
		case v.done[i]:
			box, style = "[✓]", st.OK
		case i == v.current:
			box, style = "[▸]", st.Key
		}
		lines = append(lines, style.Render(fmt.Sprintf("%s %d. %s", box, i+1, stepTitles[i])))
		if i == stepChooseID && (i == v.current || v.done[i]) {
			lines = append(lines, "      "+v.regID.View())
		} else if v.notes[i] != "" {
			lines = append(lines, "      "+fit(v.notes[i], max(v.c.Width-6, 10)))
		}
		if i == v.current && v.failed != "" {
			for _, l := range strings.Split(ansi.Wrap(v.failed+"  (enter retries)", max(v.c.Width-6, 10), " "), "\n") {
				lines = append(lines, "      "+st.Error.Render(l)) // wrapped: the end says what to do
			}
		}
		if i == stepProvision && (v.current == stepProvision && (v.tl.running || v.tl.regID != "")) {
			for _, l := range strings.Split(v.tl.view(), "\n") {
				lines = append(lines, "      "+l)
			}
		}
	}
	lines = append(lines, "")
	if v.current < stepCount {
		lines = append(lines, st.Muted.Render("enter runs step "+itoa(v.current+1)))
	} else {
		lines = append(lines, st.OK.Render("All done. esc goes back."))
	}
	return strings.Join(lines, "\n")
}
