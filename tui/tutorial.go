package tui

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
	"github.com/dpsconsole/dpsconsole/tui/components/timeline"
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
	"Confirm the registration record and the device on its hub",
	"Clean up: records first, then the group, then the hub device",
}

// tutorialDocsID is the registration ID the docs' tutorial uses. It may well
// be a real device on the target, so the tutorial never uses it by default.
const tutorialDocsID = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"

// tutorialView walks the symmetric-key tutorial step by step, each step
// done for real against the live target; values carry between steps. It
// touches only what it creates: a fresh group, and a registration ID that has
// no record and no hub device yet. Each object is journaled (see
// tutorialJournal) so a run left part-way can be cleaned up later.
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
	tl        *timeline.Model
	record    *dps.DeviceRegistrationState

	journal *tutorialJournal
	// created is what this run made and has not removed yet.
	created []tutorialObject
	// checkedHubs are the hubs step 2 found free of the chosen ID; only a
	// device on one of them can be the tutorial's own.
	checkedHubs []string
	// leftovers are earlier runs' objects the journal says are still there.
	leftovers []tutorialRun
	confirm   *confirm.Dialog
	// leaveOK: the operator said yes to leaving by q or a `:` command.
	leaveOK bool
	// checking: the journal is being read for leftovers, whose dialog
	// would come up under a step the keys started meanwhile.
	checking bool
}

type tutorialStepMsg struct {
	step     int
	note     string
	err      error
	groupKey keys.Key
	record   *dps.DeviceRegistrationState
	// made is the object the step created; taken means the group ID was in use.
	made  *tutorialObject
	taken bool
	hubs  []string
}

// tutorialJournaledMsg says the record about to be made is in the journal.
type tutorialJournaledMsg struct{ err error }

// tutorialLeftoversMsg lists what earlier runs left on the target.
type tutorialLeftoversMsg struct {
	runs []tutorialRun
	err  error
}

// tutorialRemovedMsg reports a clean-up: of this run (step 7 or leaving) or
// of earlier runs' leftovers.
type tutorialRemovedMsg struct {
	removed []tutorialObject
	note    string
	err     error
	closing bool // the operator chose to leave: close the view when done
	earlier bool // the leftovers of earlier runs
}

func newTutorialView(c *Common) *tutorialView {
	v := &tutorialView{c: c, vid: c.newID(), journal: newTutorialJournal(c.Target), groupID: freshTutorialGroupID()}
	v.tl = newTimeline(c, v.vid)
	v.regID = textinput.New()
	v.regID.Prompt = ""
	v.regID.SetValue(freshTutorialRegID())
	v.regID.SetWidth(50)
	return v
}

// freshTutorialGroupID and freshTutorialRegID are new names for each run
// (the ID in the docs' shape), so the tutorial never lands on an existing
// object by default; step 1 and step 2 still check.
// (math/rand, not crypto: these are names, not secrets.)
func freshTutorialGroupID() string { return fmt.Sprintf("dpsconsole-tutorial-%08x", rand.Uint32()) }

func freshTutorialRegID() string {
	mac := make([]string, 6)
	for i := range mac {
		mac[i] = fmt.Sprintf("%02x", rand.N(256))
	}
	return "sn-007-888-abc-mac-" + strings.Join(mac, "-")
}

func (v *tutorialView) id() int       { return v.vid }
func (v *tutorialView) Title() string { return "Tutorial: symmetric-key group" }
func (v *tutorialView) Editing() bool { return v.regID.Focused() || v.confirm != nil }
func (v *tutorialView) Busy() bool {
	return v.working || v.checking || v.tl.Running() || v.tl.Sending()
}
func (v *tutorialView) Status() string {
	return fmt.Sprintf("step %d/%d", min(v.current+1, stepCount), stepCount)
}
func (v *tutorialView) SetSize(w, _ int) {
	v.regID.SetWidth(min(max(w-30, 10), 60))
}
func (v *tutorialView) Hints() []*Binding {
	switch {
	case v.confirm != nil:
		return nil // the dialog lists its keys
	case v.regID.Focused():
		return []*Binding{v.c.Keys.Submit, v.c.Keys.Leave}
	}
	return []*Binding{v.c.Keys.Submit}
}

// Stop cancels a registration still running when the view is closed.
func (v *tutorialView) Stop() { v.tl.Stop() }

// Init looks for what earlier runs left behind.
func (v *tutorialView) Init() tea.Cmd {
	if v.c.ReadOnly || v.journal == nil {
		return nil
	}
	j := v.journal
	v.checking = true
	return do(v.vid, func() tea.Msg {
		runs, err := j.leftovers()
		return tutorialLeftoversMsg{runs: runs, err: err}
	})
}

// Escape asks, before leaving part-way, whether to remove what this run
// created; with nothing created the view just closes.
func (v *tutorialView) Escape() bool {
	if len(v.created) == 0 || v.c.ReadOnly {
		return false
	}
	names := make([]string, len(v.created))
	for i, o := range v.created {
		names[i] = o.String()
	}
	text := "You are leaving the tutorial at step " + itoa(v.current+1) + ". It created:\n  " + strings.Join(names, "\n  ")
	keep := confirm.Choice{Key: "k", Label: "keep them and leave (the next :tutorial offers to remove them)", Run: func() tea.Cmd {
		return tea.Batch(back(v.vid), flashInfo("kept what the tutorial created; the next :tutorial offers to remove it"))
	}}
	remove := confirm.Choice{Key: "y", Label: "remove them now, then leave", Run: func() tea.Cmd { return v.removeOwn(true) }}
	v.confirm = &confirm.Dialog{Text: text, Choices: []confirm.Choice{remove, keep}}
	if v.tl.Running() {
		// DPS may still assign it after a removal now, re-creating the record.
		v.confirm.Text += "\nThe registration is still running: wait for its result to remove them now."
		v.confirm.Choices = []confirm.Choice{keep}
	}
	return true
}

// AskLeave asks before q or a `:` command leaves part-way: once a step
// runs or the run created something. Leaving removes nothing (esc is the way
// that offers to), and the question says so.
func (v *tutorialView) AskLeave(how string, then tea.Cmd) bool {
	busy := v.working || v.tl.Running()
	if v.leaveOK || v.c.ReadOnly || (len(v.created) == 0 && !busy) {
		return false
	}
	text := "Leave the tutorial at step " + itoa(v.current+1) + "? " + how + "."
	if len(v.created) > 0 {
		names := make([]string, len(v.created))
		for i, o := range v.created {
			names[i] = o.String()
		}
		text += "\nIt created:\n  " + strings.Join(names, "\n  ") + "\nLeaving removes none of it: "
		if v.journal != nil {
			text += "the next :tutorial offers to remove it."
		} else {
			text += "no journal keeps it for a later run (there is no state directory)."
		}
		text += " To remove it now, answer no, then esc."
	}
	if v.tl.Running() {
		text += "\nThe registration still running is stopped."
	} else if v.working {
		text += "\nThe step under way still completes; what it makes stays too."
	}
	v.confirm = &confirm.Dialog{Text: text, Choices: []confirm.Choice{{Key: "y", Label: "leave, keeping it", Run: func() tea.Cmd {
		v.leaveOK = true
		return then
	}}}}
	return true
}

func (v *tutorialView) Update(msg tea.Msg) tea.Cmd {
	if cmd, ok := v.tl.Update(msg); ok {
		return tea.Batch(cmd, v.checkTimeline())
	}
	switch msg := msg.(type) {
	case tutorialStepMsg:
		return v.stepDone(msg)
	case tutorialJournaledMsg:
		v.working = false
		if msg.err != nil {
			v.failed = "not registering: " + msg.err.Error()
			return nil
		}
		return v.tl.Start(v.regID.Value(), v.deviceKey, nil)
	case tutorialLeftoversMsg:
		v.checking = false
		if msg.err != nil {
			return flashErr(msg.err)
		}
		if len(msg.runs) > 0 {
			v.leftovers = msg.runs
			v.confirm = v.leftoversDialog()
		}
		return nil
	case tutorialRemovedMsg:
		return v.removed(msg)
	case tea.PasteMsg:
		if v.regID.Focused() {
			var cmd tea.Cmd
			v.regID, cmd = v.regID.Update(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		if v.confirm != nil {
			c := v.confirm
			v.confirm = nil
			return answer(c, msg)
		}
		if v.checking { // the leftovers dialog may be about to ask
			return nil
		}
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
		case v.c.Keys.Telemetry.Matches(msg) && v.current >= stepTelemetry: // step 5 says ctrl+t sends
			return v.tl.SendTelemetry()
		case v.c.Keys.Submit.Matches(msg):
			return v.runStep()
		}
	}
	return nil
}

func (v *tutorialView) stepDone(msg tutorialStepMsg) tea.Cmd {
	v.working = false
	if msg.made != nil {
		v.created = append(v.created, *msg.made)
	}
	if msg.err != nil {
		v.failed = dps.ErrorMessage(msg.err)
		if msg.taken {
			v.groupID = freshTutorialGroupID()
		}
		if msg.step == stepChooseID {
			return v.regID.Focus()
		}
		return nil
	}
	if !msg.groupKey.IsZero() {
		v.groupKey = msg.groupKey
	}
	if msg.record != nil {
		v.record = msg.record
	}
	if msg.step == stepChooseID {
		v.checkedHubs = msg.hubs
	}
	if msg.made != nil { // the group: home lists it
		return tea.Batch(v.complete(msg.step, msg.note), groupsChanged)
	}
	return v.complete(msg.step, msg.note)
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
	case v.current == stepProvision && !v.tl.Running() && v.tl.RegID() != "":
		if v.tl.Assigned() {
			r := v.tl.Result()
			return tea.Batch(v.madeDevice(r.AssignedHub, r.DeviceID), recordsChanged(v.vid, v.groupID),
				v.complete(stepProvision, fmt.Sprintf("assigned to %s as %s (%s)", r.AssignedHub, r.DeviceID, r.Substatus)))
		}
		if v.tl.Err() != nil {
			v.failed = timeline.ErrorText(v.tl.Err())
		}
	case v.current == stepTelemetry && v.tl.Sent() > 0:
		return v.complete(stepTelemetry, plural(v.tl.Sent(), "message", "messages")+" accepted by "+v.tl.Result().AssignedHub)
	case v.current == stepTelemetry && v.tl.SendErr() != nil:
		v.failed = v.tl.SendErr().Error()
	}
	return nil
}

// madeDevice records the hub device the registration created, when it is
// the tutorial's own: the ID step 2 checked, on a hub it checked.
func (v *tutorialView) madeDevice(hubHost, deviceID string) tea.Cmd {
	if deviceID != v.regID.Value() || !containsFoldAll(v.checkedHubs, hubHost) {
		return nil
	}
	o := tutorialObject{Kind: madeDevice, ID: deviceID, Hub: hubHost}
	if slices.Contains(v.created, o) {
		return nil
	}
	v.created = append(v.created, o)
	j, run := v.journal, v.groupID
	return func() tea.Msg {
		if err := j.made(run, o); err != nil {
			return flashMsg{text: err.Error(), level: levelError}
		}
		return nil
	}
}

func containsFoldAll(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// chooseID checks the ID's shape, then (off the loop) that the target has
// no record and no hub device of it: the tutorial deletes both at the end.
func (v *tutorialView) chooseID() tea.Cmd {
	id := v.regID.Value()
	if err := keys.ValidateRegistrationID(id); err != nil {
		v.failed = err.Error()
		return nil
	}
	v.regID.Blur()
	v.working, v.failed = true, ""
	note := id
	if w := keys.RegistrationIDWarning(id); w != "" {
		note += "  ⚠ " + w
	}
	ctx, target := v.c.Ctx, v.c.Target
	return do(v.vid, func() tea.Msg {
		hubs, warn, err := checkFreshID(ctx, target, id)
		if err != nil {
			return tutorialStepMsg{step: stepChooseID, err: err}
		}
		return tutorialStepMsg{step: stepChooseID, note: note + warn, hubs: hubs}
	})
}

// checkFreshID makes sure id has no registration record and no device on
// any hub the target can reach. It returns the hubs checked, and a warning
// when some could not be.
func checkFreshID(ctx context.Context, target *Target, id string) (hubs []string, warn string, err error) {
	r, err := target.Service.GetRegistrationState(ctx, id)
	switch {
	case err == nil:
		return nil, "", fmt.Errorf("%s already has a registration record (%s, hub %s): the tutorial deletes the record and the hub device of its ID at the end, so it only uses a fresh one; choose another ID", id, r.Status, r.AssignedHub)
	case !dps.IsNotFound(err):
		return nil, "", fmt.Errorf("checking for a registration record of %s: %w", id, err)
	}
	regs, err := target.Registries()
	if err != nil {
		return nil, "", err
	}
	for _, reg := range regs {
		_, err := reg.GetDevice(ctx, id)
		switch {
		case err == nil:
			return nil, "", fmt.Errorf("hub %s already has a device %s: the tutorial deletes the hub device of its ID at the end, so it only uses a fresh one; choose another ID", reg.Host(), id)
		case !hub.IsNotFound(err):
			return nil, "", fmt.Errorf("checking hub %s for a device %s: %w", reg.Host(), id, err)
		}
		hubs = append(hubs, reg.Host())
	}
	if len(regs) == 0 {
		warn = "  ⚠ no IoT Hub connection string: the hubs were not checked, and the clean-up leaves the hub device"
	}
	return hubs, warn, nil
}

// runStep does the current step for real.
func (v *tutorialView) runStep() tea.Cmd {
	if v.c.ReadOnly {
		return flashWarn("the tutorial creates and deletes things on the target; it is off in read-only mode")
	}
	if v.working || v.tl.Running() || v.current >= stepCount {
		return nil
	}
	v.failed = ""
	svc, ctx, j := v.c.Target.Service, v.c.Ctx, v.journal
	switch v.current {
	case stepCreateGroup:
		v.working = true
		id := v.groupID
		return do(v.vid, func() tea.Msg { return createTutorialGroup(ctx, svc, j, id) })
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
		// Journaled before it exists (the ID was checked free), so even a
		// crash mid-registration leaves nothing the journal does not know.
		o := tutorialObject{Kind: madeRecord, ID: v.regID.Value()}
		if !slices.Contains(v.created, o) {
			v.created = append(v.created, o)
		}
		v.working = true
		run := v.groupID
		return do(v.vid, func() tea.Msg { return tutorialJournaledMsg{err: j.made(run, o)} })
	case stepTelemetry:
		return v.tl.SendTelemetry()
	case stepConfirm:
		v.working = true
		id, target := v.regID.Value(), v.c.Target
		return do(v.vid, func() tea.Msg {
			r, err := svc.GetRegistrationState(ctx, id)
			if err != nil {
				return tutorialStepMsg{step: stepConfirm, err: err}
			}
			if r.Status != dps.StatusAssigned {
				return tutorialStepMsg{step: stepConfirm, err: fmt.Errorf("the record of %s says %s, not assigned", id, r.Status)}
			}
			onHub, err := hubDeviceSummary(ctx, target, r.AssignedHub, r.DeviceID)
			if err != nil {
				return tutorialStepMsg{step: stepConfirm, err: err}
			}
			return tutorialStepMsg{step: stepConfirm, record: &r,
				note: fmt.Sprintf("record %s: %s to %s, updated %s\n%s", id, r.Status, r.AssignedHub, stamp(r.LastUpdatedDateTimeUTC), onHub)}
		})
	case stepCleanUp:
		return v.removeOwn(false)
	}
	return nil
}

// createTutorialGroup creates the run's group, refusing an ID already in
// use: a PUT would replace that group and its keys.
func createTutorialGroup(ctx context.Context, svc *dps.Client, j *tutorialJournal, id string) tea.Msg {
	if _, err := svc.GetEnrollmentGroup(ctx, id); err == nil {
		return tutorialStepMsg{step: stepCreateGroup, taken: true,
			err: fmt.Errorf("a group %s already exists and the tutorial will not replace it; enter tries a new name", id)}
	} else if !dps.IsNotFound(err) {
		return tutorialStepMsg{step: stepCreateGroup, err: fmt.Errorf("checking that group %s is free: %w", id, err)}
	}
	key := keys.GenerateKey()
	g := dps.EnrollmentGroup{EnrollmentGroupID: id, ProvisioningStatus: dps.ProvisioningEnabled, AllocationPolicy: dps.AllocationHashed,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: dps.Secret(key.Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}},
		ReprovisionPolicy: &dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}}
	if _, err := svc.CreateOrUpdateEnrollmentGroup(ctx, g, nil); err != nil {
		return tutorialStepMsg{step: stepCreateGroup, err: err}
	}
	o := tutorialObject{Kind: madeGroup, ID: id}
	note := "created group " + id + " (hashed over every linked hub)"
	if err := j.made(id, o); err != nil {
		note += "  ⚠ " + err.Error() + ": if you quit now, remove it yourself"
	}
	return tutorialStepMsg{step: stepCreateGroup, groupKey: key, made: &o, note: note}
}

// removeOwn removes what this run created; closing leaves the view after.
func (v *tutorialView) removeOwn(closing bool) tea.Cmd {
	v.tl.Stop()
	v.working = true
	ctx, target, j := v.c.Ctx, v.c.Target, v.journal
	run := tutorialRun{Group: v.groupID, Objects: slices.Clone(v.created)}
	checked := v.checkedHubs
	return do(v.vid, func() tea.Msg {
		removed, note, err := removeTutorialRun(ctx, target, j, run, checked)
		return tutorialRemovedMsg{removed: removed, note: note, err: err, closing: closing}
	})
}

func (v *tutorialView) leftoversDialog() *confirm.Dialog {
	var lines []string
	for _, r := range v.leftovers {
		lines = append(lines, "A tutorial run of "+stamp(r.Started)+" left on "+v.c.Target.Name+":")
		for _, o := range r.Objects {
			lines = append(lines, "  "+o.String())
		}
	}
	lines = append(lines, "The journal in the state directory says that run created them.")
	return &confirm.Dialog{Text: strings.Join(lines, "\n"), Choices: []confirm.Choice{
		{Key: "y", Label: "remove them now", Run: func() tea.Cmd {
			v.working = true
			ctx, target, j, runs := v.c.Ctx, v.c.Target, v.journal, v.leftovers
			return do(v.vid, func() tea.Msg {
				var all []tutorialObject
				var notes []string
				for _, r := range runs {
					removed, note, err := removeTutorialRun(ctx, target, j, r, nil)
					all = append(all, removed...)
					if err != nil {
						return tutorialRemovedMsg{removed: all, err: err, earlier: true}
					}
					notes = append(notes, note)
				}
				return tutorialRemovedMsg{removed: all, note: strings.Join(notes, "; "), earlier: true}
			})
		}},
		{Key: "n", Label: "keep them (the next :tutorial asks again)", Run: func() tea.Cmd { return flashInfo("kept; the next :tutorial asks again") }},
	}}
}

func (v *tutorialView) removed(msg tutorialRemovedMsg) tea.Cmd {
	return tea.Batch(v.afterRemoval(msg), groupsChanged) // home drops the group
}

func (v *tutorialView) afterRemoval(msg tutorialRemovedMsg) tea.Cmd {
	v.working = false
	if msg.earlier {
		v.leftovers = nil
		if msg.err != nil {
			return flashErr(fmt.Errorf("removing the earlier run's leftovers: %s (the next :tutorial offers the rest again)", dps.ErrorMessage(msg.err)))
		}
		return flash("removed the earlier run's leftovers: " + oneLine(msg.note))
	}
	v.created = slices.DeleteFunc(v.created, func(o tutorialObject) bool { return slices.Contains(msg.removed, o) })
	switch {
	case msg.err != nil && msg.closing:
		return flashErr(fmt.Errorf("cleaning up: %s; esc asks again", dps.ErrorMessage(msg.err)))
	case msg.err != nil:
		v.failed = dps.ErrorMessage(msg.err)
		return nil
	case msg.closing:
		return tea.Batch(back(v.vid), flash("tutorial left: "+oneLine(msg.note)))
	}
	// The hub device is gone: its summary under step 6 would be stale.
	v.notes[stepConfirm], _, _ = strings.Cut(v.notes[stepConfirm], "\n")
	return v.complete(stepCleanUp, msg.note)
}

// removeTutorialRun deletes what one run created, in the tutorial's order:
// the record first, then the group, then the hub device; each removal is
// journaled. checkedHubs (this run only) lets it find the hub device of a
// registration whose result it never saw (the operator left mid-way); for an
// earlier run only journaled devices are removed.
func removeTutorialRun(ctx context.Context, target *Target, j *tutorialJournal, run tutorialRun, checkedHubs []string) (removed []tutorialObject, note string, err error) {
	objs := run.Objects
	for _, o := range objs {
		if o.Kind != madeRecord || len(checkedHubs) == 0 {
			continue
		}
		r, err := target.Service.GetRegistrationState(ctx, o.ID)
		d := tutorialObject{Kind: madeDevice, ID: r.DeviceID, Hub: r.AssignedHub}
		if err == nil && r.DeviceID == o.ID && containsFoldAll(checkedHubs, r.AssignedHub) && !slices.Contains(objs, d) {
			if err := j.made(run.Group, d); err != nil {
				return nil, "", err
			}
			objs = append(slices.Clone(objs), d)
		}
	}
	var done, kept []string
	for _, kind := range []string{madeRecord, madeGroup, madeDevice} {
		for _, o := range objs {
			if o.Kind != kind {
				continue
			}
			if kind == madeGroup { // its own records are gone by now
				others, _, err := countRecords(ctx, target.Service, o.ID, 1)
				if err != nil {
					return removed, "", fmt.Errorf("reading the records of group %s before deleting it: %w", o.ID, err)
				}
				if others > 0 {
					kept = append(kept, "kept group "+o.ID+": it holds registration records the tutorial did not make, which deleting it would leave orphaned (delete them first, or delete the group with d)")
					continue
				}
			}
			if err := removeTutorialObject(ctx, target, o); err != nil {
				return removed, "", err
			}
			removed = append(removed, o)
			done = append(done, o.String())
			if err := j.gone(run.Group, o); err != nil {
				return removed, "", err
			}
		}
	}
	var notes []string
	if len(done) > 0 {
		// One object a line under step 7; a flash joins them again.
		notes = append(notes, "deleted "+strings.Join(done, ",\nthen "))
	}
	notes = append(notes, kept...)
	if len(notes) == 0 {
		return nil, "nothing to remove", nil
	}
	return removed, strings.Join(notes, ";\n"), nil
}

// removeTutorialObject deletes one object; one already gone is fine.
func removeTutorialObject(ctx context.Context, target *Target, o tutorialObject) error {
	svc := target.Service
	switch o.Kind {
	case madeRecord:
		if err := svc.DeleteRegistrationState(ctx, o.ID, nil); err != nil && !dps.IsNotFound(err) {
			return fmt.Errorf("deleting the registration record %s: %w", o.ID, err)
		}
	case madeGroup:
		if err := svc.DeleteEnrollmentGroup(ctx, o.ID, nil); err != nil && !dps.IsNotFound(err) {
			return fmt.Errorf("deleting the group %s: %w", o.ID, err)
		}
		if target.Journal != nil {
			_ = target.Journal.Deleted(o.ID) // the clean-up's memory of groups; best effort
		}
	case madeDevice:
		reg, err := target.Registry(o.Hub)
		if err != nil {
			return err
		}
		if err := reg.DeleteDevice(ctx, o.ID, nil); err != nil && !hub.IsNotFound(err) {
			return fmt.Errorf("deleting device %s from %s: %w", o.ID, o.Hub, err)
		}
	}
	return nil
}

func (v *tutorialView) View() string {
	st := v.c.Styles
	if v.confirm != nil {
		return v.confirm.View(v.c.Styles, v.c.Width)
	}
	var lines []string
	if v.c.ReadOnly {
		lines = append(lines, st.Warning.Render("Read-only mode: the tutorial creates and deletes things, so its steps are off."), "")
	}
	// The timeline stays under step 4 once it ran: the demo's best moment.
	showTimeline := v.tl.Running() || v.tl.RegID() != ""
	tlAt, tlLen := 0, 0
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
		switch {
		case i == stepChooseID && i == v.current:
			lines = append(lines, "      "+v.regID.View(),
				"      "+st.Muted.Render(theme.Fit("a fresh ID, not the docs' "+tutorialDocsID+": that may be a real device here", max(v.c.Width-6, 10))))
		case i == stepProvision && showTimeline:
		case v.notes[i] != "":
			lines = indented(lines, lipgloss.NewStyle().Width(max(v.c.Width-6, 20)).Render(v.notes[i]))
		}
		if i == v.current && v.failed != "" {
			// Wrapped, not cut: the reason and what to do come last.
			lines = indented(lines, st.Error.Width(max(v.c.Width-6, 20)).Render(v.failed+"  (enter retries)"))
		}
		if i == stepProvision && showTimeline {
			tlAt = len(lines)
			lines = indented(lines, v.tl.View(v.c.Styles, v.c.Width-6))
			tlLen = len(lines) - tlAt
		}
	}
	lines = append(lines, "")
	if v.current < stepCount {
		lines = append(lines, st.Muted.Render("enter runs step "+itoa(v.current+1)))
	} else {
		lines = append(lines, st.OK.Render("All done. esc goes back."))
	}
	return strings.Join(fitTimeline(lines, tlAt, tlLen, v.c.Height, st), "\n")
}

// fitTimeline shortens the timeline block (lines[at:at+n]) when the view is
// taller than the screen, so the later steps stay visible: first its blank
// lines go, then its oldest events; the result and telemetry lines stay.
func fitTimeline(lines []string, at, n, height int, st *Styles) []string {
	const keep = 2
	if len(lines) <= height || n <= keep {
		return lines
	}
	block := slices.DeleteFunc(slices.Clone(lines[at:at+n]), func(l string) bool { return strings.TrimSpace(l) == "" })
	if excess := len(lines) - n + len(block) - height; excess > 0 && len(block) > keep {
		cut := min(excess+1, len(block)-keep) // +1: the line that says so
		marker := "      " + st.Muted.Render(fmt.Sprintf("⋮ %d earlier timeline lines (a taller terminal shows them)", cut))
		block = append([]string{marker}, block[cut:]...)
	}
	return slices.Concat(lines[:at], block, lines[at+n:])
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// indented appends block's lines under a step.
func indented(lines []string, block string) []string {
	for _, l := range strings.Split(block, "\n") {
		lines = append(lines, "      "+l)
	}
	return lines
}
