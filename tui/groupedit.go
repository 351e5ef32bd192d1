package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/textarea"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// Group edit rows, top to bottom.
const (
	geStatus = iota
	geAllocation
	geHubs
	geReprovision
	geWebhook
	geTwin
	geRows
)

var editLabels = [geRows]string{"Status", "Allocation", "Hubs", "Reprovision", "Webhook URL", "Initial twin"}

// groupEditView changes an enrollment group's settings under its ETag: the
// PUT carries If-Match with the ETag the form was opened with, so a change
// made elsewhere meanwhile is shown, field by field, and not overwritten.
type groupEditView struct {
	c       *Common
	vid     int
	groupID string
	gen     int // a reload drops an older read

	base  *dps.EnrollmentGroup // as read, keys included (PUT replaces the whole group)
	hubs  []string             // the hubs to choose from
	picks []bool               // ticked hubs, as hubs
	hubAt int                  // the hub under the cursor on the Hubs row

	choice  [geRows]int // the chosen index of the choice rows
	webhook textinput.Model
	twin    textarea.Model
	focus   int // a row; -1 = none has the keys

	revealed bool
	err      string
	saving   bool
	// conflict is what changed elsewhere when the save met a 412; theirs is
	// the group as it is now, for r to reload.
	conflict []settingChange
	theirs   *dps.EnrollmentGroup
	height   int // the body's, for fitTwin
}

type groupEditLoadedMsg struct {
	gen   int
	group dps.EnrollmentGroup
	err   error
}

// groupSavedMsg is the PUT's answer; on a 412, theirs is the group as it
// is now (or theirsErr why it could not be read).
type groupSavedMsg struct {
	gen       int
	group     dps.EnrollmentGroup
	err       error
	theirs    *dps.EnrollmentGroup
	theirsErr error
}

func newGroupEditView(c *Common, groupID string) *groupEditView {
	v := &groupEditView{c: c, vid: c.newID(), groupID: groupID, webhook: textinput.New(), twin: textarea.New()}
	v.webhook.Prompt = ""
	v.webhook.EchoMode = textinput.EchoPassword // its query is the function's key
	v.webhook.Placeholder = "https://…  (custom allocation only)"
	v.twin.Placeholder = `{"tags": {…}, "properties": {"desired": {…}}}`
	v.twin.SetHeight(8)
	return v
}

func (v *groupEditView) id() int       { return v.vid }
func (v *groupEditView) Title() string { return "Edit " + v.groupID }

// Editing is also true while the group loads: keys typed then are the
// form's (dropped), not the console's (q would quit under the form).
func (v *groupEditView) Editing() bool {
	return v.loading() || (v.focus >= 0 && v.base != nil && v.conflict == nil)
}
func (v *groupEditView) loading() bool  { return v.base == nil && v.err == "" }
func (v *groupEditView) Busy() bool     { return v.saving || v.loading() }
func (v *groupEditView) Status() string { return "" }
func (v *groupEditView) SetSize(w, h int) {
	v.webhook.SetWidth(max(min(w-20, 90), 8))
	v.twin.SetWidth(max(min(w-18, 90), 20))
	v.height = h
	v.fitTwin()
}

// fitTwin gives the twin field the lines the rest of the form leaves: the
// other rows and notes take 13, a conflict's table its own (it replaces
// the one-line ETag note), down to one line of twin while the conflict,
// not the twin, is what to read.
func (v *groupEditView) fitTwin() {
	rest, least := 13, 3
	if v.conflict != nil {
		rest, least = rest+len(v.conflictView())-1, 1
	}
	v.twin.SetHeight(min(max(v.height-rest, least), 8))
}

func (v *groupEditView) Hints() []*Binding {
	k := v.c.Keys
	switch {
	case v.conflict != nil:
		return []*Binding{k.Refresh}
	case v.focus == geTwin:
		return []*Binding{k.NextField, k.PrevField, k.Leave}
	case v.focus >= 0:
		return []*Binding{k.Submit, k.NextField, k.Reveal, k.Leave}
	}
	return []*Binding{k.Submit, k.NextField, k.Reveal}
}

func (v *groupEditView) Init() tea.Cmd { return v.load() }

// load reads the group and its keys: DPS replaces a whole group on PUT, so
// the keys go back unchanged.
func (v *groupEditView) load() tea.Cmd {
	v.gen++
	gen, id, svc, ctx := v.gen, v.groupID, v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		g, err := readGroupWithKeys(ctx, svc, id)
		return groupEditLoadedMsg{gen: gen, group: g, err: err}
	})
}

// readGroupWithKeys reads a group as a PUT must send it back: GET leaves
// the keys out, so a symmetric-key group's come from attestationmechanism.
func readGroupWithKeys(ctx context.Context, svc *dps.Client, id string) (dps.EnrollmentGroup, error) {
	g, err := svc.GetEnrollmentGroup(ctx, id)
	if err != nil || g.Attestation.Type != dps.AttestationSymmetricKey {
		return g, err
	}
	att, err := svc.GetEnrollmentGroupAttestation(ctx, id)
	if err != nil {
		return g, fmt.Errorf("reading the keys of %s: %w", id, err)
	}
	g.Attestation = att
	return g, nil
}

func (v *groupEditView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case groupEditLoadedMsg:
		if msg.gen != v.gen {
			return nil
		}
		if msg.err != nil {
			v.err = dps.ErrorMessage(msg.err)
			return nil
		}
		v.open(msg.group, settingsOf(msg.group))
		return v.focusOn(geStatus)
	case groupSavedMsg:
		if msg.gen != v.gen {
			return nil
		}
		v.saving = false
		return v.saved(msg)
	case tea.PasteMsg:
		return v.typed(msg)
	case tea.KeyPressMsg:
		if v.base == nil {
			if v.loading() && msg.String() == "esc" { // the console's esc does not reach a form
				return back(v.vid)
			}
			return nil
		}
		return v.key(msg)
	}
	return v.typed(msg) // the cursor's blink
}

// open fills the form with s over group g, the version a save writes over.
func (v *groupEditView) open(g dps.EnrollmentGroup, s groupSettings) {
	v.base, v.conflict, v.theirs, v.err = &g, nil, nil, ""
	v.fitTwin()
	v.hubs = knownHubs(v.c.Target, g)
	ticked := splitHubs(s.hubs)
	v.picks = make([]bool, len(v.hubs))
	for i, h := range v.hubs {
		v.picks[i] = slices.ContainsFunc(ticked, func(t string) bool { return strings.EqualFold(t, h) })
	}
	v.choice[geStatus] = max(slices.Index(statusChoices, s.status), 0)
	v.choice[geAllocation] = max(slices.Index(allocationChoices, s.allocation), 0)
	v.choice[geReprovision] = max(slices.Index(reprovisionChoices, s.reprovision), 0)
	v.webhook.SetValue(s.webhook)
	v.twin.SetValue(indentTwin(s.twin))
}

// knownHubs are the hubs a group may name: the ones the console has
// connection strings for (every hub of the emulator), and those the group
// names already.
func knownHubs(t *Target, g dps.EnrollmentGroup) []string {
	var out []string
	add := func(h string) {
		if h != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, h) }) {
			out = append(out, h)
		}
	}
	if t != nil {
		for _, cs := range t.HubConnectionStrings {
			if p, err := keys.ParseServiceConnectionString(cs); err == nil {
				add(p.HostName)
			}
		}
	}
	for _, h := range g.IoTHubs {
		add(h)
	}
	add(g.IoTHubHostName)
	return out
}

func (v *groupEditView) focusOn(row int) tea.Cmd {
	v.focus = row
	v.webhook.Blur()
	v.twin.Blur()
	switch row {
	case geWebhook:
		return v.webhook.Focus()
	case geTwin:
		return v.twin.Focus()
	}
	return nil
}

// typed gives a message to the focused text field.
func (v *groupEditView) typed(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	switch v.focus {
	case geWebhook:
		v.webhook, cmd = v.webhook.Update(msg)
	case geTwin:
		v.twin, cmd = v.twin.Update(msg)
	}
	return cmd
}

func (v *groupEditView) key(msg tea.KeyPressMsg) tea.Cmd {
	k := v.c.Keys
	if v.conflict != nil {
		if k.Refresh.Matches(msg) && v.theirs != nil {
			return v.reload()
		}
		return nil
	}
	inText := v.focus == geWebhook || v.focus == geTwin
	if (inText && k.Reveal.MatchesInField(msg)) || (!inText && k.Reveal.Matches(msg)) {
		v.reveal()
		return nil
	}
	s := msg.String()
	switch {
	case s == "esc":
		return v.focusOn(-1)
	case s == "tab" || (s == "down" && v.focus != geTwin):
		return v.focusOn((v.focus + 1) % geRows)
	case s == "shift+tab" || (s == "up" && v.focus != geTwin):
		return v.focusOn((v.focus + geRows - 1) % geRows)
	case s == "enter" && v.focus != geTwin:
		return v.submit()
	case v.focus < 0:
		return nil
	case inText:
		return v.typed(msg)
	case v.focus == geHubs:
		v.hubKey(s)
	case s == "left" || s == "right":
		n := map[int]int{geStatus: len(statusChoices), geAllocation: len(allocationChoices), geReprovision: len(reprovisionChoices)}[v.focus]
		step := 1
		if s == "left" {
			step = n - 1
		}
		v.choice[v.focus] = (v.choice[v.focus] + step) % n
	}
	return nil
}

// hubKey moves along the hubs (←/→) and ticks one (space).
func (v *groupEditView) hubKey(s string) {
	if len(v.hubs) == 0 {
		return
	}
	switch s {
	case "left":
		v.hubAt = (v.hubAt + len(v.hubs) - 1) % len(v.hubs)
	case "right":
		v.hubAt = (v.hubAt + 1) % len(v.hubs)
	case "space", " ":
		v.picks[v.hubAt] = !v.picks[v.hubAt]
	}
}

func (v *groupEditView) reveal() {
	v.revealed = !v.revealed
	v.webhook.EchoMode = textinput.EchoPassword
	if v.revealed {
		v.webhook.EchoMode = textinput.EchoNormal
	}
}

// settings reads the form, checked: an error names the field.
func (v *groupEditView) settings() (groupSettings, error) {
	s := groupSettings{status: statusChoices[v.choice[geStatus]], allocation: allocationChoices[v.choice[geAllocation]],
		reprovision: reprovisionChoices[v.choice[geReprovision]], webhook: strings.TrimSpace(v.webhook.Value())}
	var ticked []string
	for i, h := range v.hubs {
		if v.picks[i] {
			ticked = append(ticked, h)
		}
	}
	s.hubs = joinHubs(ticked)
	if s.allocation == string(dps.AllocationStatic) && len(ticked) != 1 {
		return s, fmt.Errorf("Hubs: static allocation needs exactly one hub ticked, %d are", len(ticked))
	}
	if err := checkWebhook(s.allocation, s.webhook); err != nil {
		return s, err
	}
	twin, err := parseInitialTwin(v.twin.Value())
	if err != nil {
		return s, err
	}
	s.twin = twin
	return s, nil
}

// submit writes the form over the version it was opened with, If-Match its
// ETag; a 412 reads the group as it is now, to show what changed.
func (v *groupEditView) submit() tea.Cmd {
	if v.saving || v.c.ReadOnly {
		return nil
	}
	s, err := v.settings()
	if err != nil {
		v.err = err.Error()
		return nil
	}
	g := applySettings(*v.base, s)
	v.err, v.saving = "", true
	gen, svc, ctx := v.gen, v.c.Target.Service, v.c.Ctx
	etag := azcore.ETag(v.base.ETag)
	return do(v.vid, func() tea.Msg {
		saved, err := svc.CreateOrUpdateEnrollmentGroup(ctx, g, &dps.WriteOptions{IfMatch: &etag})
		msg := groupSavedMsg{gen: gen, group: saved, err: err}
		if dps.IsPreconditionFailed(err) {
			theirs, terr := readGroupWithKeys(ctx, svc, g.EnrollmentGroupID)
			msg.theirs, msg.theirsErr = &theirs, terr
		}
		return msg
	})
}

func (v *groupEditView) saved(msg groupSavedMsg) tea.Cmd {
	switch {
	case msg.err == nil:
		return tea.Batch(flash("saved enrollment group "+v.groupID), back(v.vid), groupsChanged)
	case msg.theirs == nil:
		v.err = "saving " + v.groupID + ": " + dps.ErrorMessage(msg.err)
		return nil
	case msg.theirsErr != nil:
		v.err = fmt.Sprintf("%s changed elsewhere since it was opened (412), and reading it again failed: %s; nothing was saved",
			v.groupID, dps.ErrorMessage(msg.theirsErr))
		return nil
	}
	mine, _ := v.settings() // checked by submit
	v.conflict = changesElsewhere(settingsOf(*v.base), settingsOf(*msg.theirs), mine)
	if keysChanged(*v.base, *msg.theirs) {
		v.conflict = append(v.conflict, settingChange{field: "Keys", theirs: "changed (masked)", yours: "as opened"})
	}
	v.theirs = msg.theirs
	v.fitTwin()
	v.focusOn(-1)
	return flashWarn(v.groupID + " changed elsewhere: nothing was saved")
}

func keysChanged(a, b dps.EnrollmentGroup) bool {
	ka, kb := a.Attestation.SymmetricKey, b.Attestation.SymmetricKey
	if ka == nil || kb == nil {
		return (ka == nil) != (kb == nil)
	}
	return *ka != *kb
}

// reload opens the group as it is now, with the operator's changes on top,
// for another look before enter saves it.
func (v *groupEditView) reload() tea.Cmd {
	mine, _ := v.settings()
	merged := rebase(settingsOf(*v.base), settingsOf(*v.theirs), mine)
	v.open(*v.theirs, merged)
	return tea.Batch(v.focusOn(geStatus), flashInfo("reloaded "+v.groupID+" as it is now, with your changes on top: enter saves"))
}

func (v *groupEditView) View() string {
	st := v.c.Styles
	if v.base == nil {
		if v.err != "" {
			return errorText(v.c, v.err)
		}
		return st.Muted.Render("reading " + v.groupID + "…")
	}
	const labelWidth = 13
	notes := [geRows]string{
		geAllocation: "←/→ picks; weights are set per linked hub on the DPS resource, not per group",
		geHubs:       "←/→ moves, space ticks; none ticked = every linked hub",
		geReprovision: map[string]string{"migrate": "a re-registering device may move hub, its twin with it",
			"reset": "a re-registering device may move hub and starts from the initial twin", "never": "a registered device stays on its hub"}[reprovisionChoices[v.choice[geReprovision]]],
		geWebhook: "called for custom allocation; masked (its query is the function's key) until " + v.c.Keys.Reveal.FieldKey(),
		geTwin:    "JSON; tab leaves the field, enter is a new line",
	}
	var lines []string
	for row := range geRows {
		marker := "  "
		if v.focus == row {
			marker = st.Key.Render("▸ ")
		}
		lines = append(lines, marker+st.Label.Render(theme.Fit(editLabels[row], labelWidth))+" "+v.rowValue(row))
		if notes[row] != "" {
			lines = append(lines, strings.Repeat(" ", labelWidth+3)+st.Muted.Render(notes[row]))
		}
	}
	lines = append(lines, "")
	if v.err != "" {
		lines = append(lines, errorText(v.c, v.err))
	}
	if v.conflict != nil {
		lines = append(lines, v.conflictView()...)
	} else {
		lines = append(lines, st.Muted.Render(fmt.Sprintf("enter saves over ETag %s (a change made elsewhere meanwhile is shown, not overwritten); esc leaves", v.base.ETag)))
	}
	return strings.Join(lines, "\n")
}

func (v *groupEditView) rowValue(row int) string {
	st := v.c.Styles
	pick := func(choices []string, at int) string {
		out := make([]string, len(choices))
		for i, c := range choices {
			if i == at {
				out[i] = st.Key.Render("[" + c + "]")
			} else {
				out[i] = st.Muted.Render(" " + c + " ")
			}
		}
		return strings.Join(out, " ")
	}
	switch row {
	case geStatus:
		return pick(statusChoices, v.choice[geStatus])
	case geAllocation:
		return pick(allocationChoices, v.choice[geAllocation])
	case geReprovision:
		return pick(reprovisionChoices, v.choice[geReprovision])
	case geHubs:
		if len(v.hubs) == 0 {
			return st.Muted.Render("no hubs known: set IOTHUB_CONNECTION_STRING to offer them")
		}
		out := make([]string, len(v.hubs))
		for i, h := range v.hubs {
			box := "[ ] "
			if v.picks[i] {
				box = "[x] "
			}
			out[i] = box + h
			if v.focus == geHubs && i == v.hubAt {
				out[i] = st.Selected.Render(out[i])
			}
		}
		return strings.Join(out, "  ")
	case geWebhook:
		return st.Input(v.webhook).View()
	}
	return strings.ReplaceAll(v.twin.View(), "\n", "\n"+strings.Repeat(" ", 16))
}

// conflictView lists what changed elsewhere, theirs against the operator's.
func (v *groupEditView) conflictView() []string {
	st := v.c.Styles
	lines := []string{st.Warning.Render(fmt.Sprintf("%s changed elsewhere since you opened it (ETag %s, now %s); nothing was saved.",
		v.groupID, v.base.ETag, v.theirs.ETag))}
	if len(v.conflict) == 0 {
		lines = append(lines, st.Muted.Render("None of these settings differ: another field changed (keys, capabilities)."))
	} else {
		lines = append(lines, st.TableHeader.Render(fmt.Sprintf("  %-13s %-36s %s", "FIELD", "THEIRS (on DPS now)", "YOURS")))
		for _, c := range v.conflict {
			yours := shownSetting(c.field, c.yours, v.revealed)
			if !c.touched {
				yours = st.Muted.Render("(not changed by you)")
			}
			lines = append(lines, fmt.Sprintf("  %-13s %-36s %s", c.field, theme.Fit(shownSetting(c.field, c.theirs, v.revealed), 36), yours))
		}
	}
	return append(lines, "", st.Muted.Render(v.c.Keys.Refresh.Help().Key+" reloads their version with your changes on top (then enter saves); esc leaves without saving"))
}
