package tui

import (
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/form"
)

// keySource is where the derive view takes the group key from.
type keySource int

const (
	sourceTyped keySource = iota
	sourcePrimary
	sourceSecondary
)

func (s keySource) String() string {
	return [...]string{"typed group key", "group's primary key", "group's secondary key"}[s]
}

// Derive fields.
const (
	fieldGroup = iota // the group key, or the group ID when taken from a group
	fieldRegID
)

// deriveView derives a device key as the operator types.
type deriveView struct {
	c      *Common
	vid    int
	f      *form.Form
	source keySource
	// groupKey is the key in use (typed or fetched); zero when none is valid.
	groupKey    keys.Key
	keyErr      string
	fetchedFrom string // group ID the key was fetched from
	fetchGen    int
	fetching    bool
	revealed    bool
	device      keys.Key
	regErr      string
	regWarn     string
}

type attestationMsg struct {
	gen     int
	groupID string
	att     dps.AttestationMechanism
	err     error
}

// newDeriveView opens Derive; with a groupID the key is fetched from that
// group (primary), with a regID the registration ID is filled in.
func newDeriveView(c *Common, groupID, regID string) *deriveView {
	v := &deriveView{c: c, vid: c.newID(), f: newForm(c, "Group key", "Registration ID")}
	v.f.Inputs[fieldGroup].EchoMode = textinput.EchoPassword
	v.f.Inputs[fieldGroup].Placeholder = "base64 group key (paste)"
	v.f.Inputs[fieldRegID].Placeholder = "e.g. sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	if groupID != "" {
		v.setSource(sourcePrimary)
		v.f.Set(fieldGroup, groupID)
	}
	v.f.Set(fieldRegID, regID)
	v.recompute()
	return v
}

func (v *deriveView) id() int        { return v.vid }
func (v *deriveView) Title() string  { return "Derive device key" }
func (v *deriveView) Editing() bool  { return v.f.Editing() }
func (v *deriveView) Busy() bool     { return v.fetching }
func (v *deriveView) Status() string { return "" }
func (v *deriveView) SetSize(w, _ int) {
	if w >= wideDerive {
		w -= commandsWidth + 1
	}
	v.f.SetWidth(min(w-22, 90))
}

// wideDerive is the width from which the shell commands sit beside the
// fields; commandsWidth is their box's width there.
const wideDerive, commandsWidth = 140, 84

func (v *deriveView) Hints() []*Binding {
	k := v.c.Keys
	if v.f.Editing() {
		return []*Binding{k.NextField, k.Copy, k.KeySource, k.Reveal, k.Leave}
	}
	return []*Binding{k.Submit, k.Copy, k.KeySource, k.Reveal}
}

func (v *deriveView) Init() tea.Cmd {
	cmd := v.f.FocusOn(fieldRegID)
	if v.source != sourceTyped {
		return tea.Batch(cmd, v.fetch())
	}
	if v.f.Value(fieldGroup) == "" {
		cmd = v.f.FocusOn(fieldGroup)
	}
	return cmd
}

func (v *deriveView) setSource(s keySource) {
	v.source = s
	in := &v.f.Inputs[fieldGroup]
	in.SetValue("")
	v.groupKey, v.fetchedFrom, v.keyErr = keys.Key{}, "", ""
	v.dropFetch()
	if s == sourceTyped {
		v.f.Labels[fieldGroup] = "Group key"
		in.EchoMode = textinput.EchoPassword
		in.Placeholder = "base64 group key (paste)"
		if v.revealed {
			in.EchoMode = textinput.EchoNormal
		}
	} else {
		v.f.Labels[fieldGroup] = "Group ID"
		in.EchoMode = textinput.EchoNormal
		in.Placeholder = "enrollment group ID, then enter"
	}
}

// dropFetch forgets a fetch in flight: the source or group it was for changed.
func (v *deriveView) dropFetch() {
	v.fetchGen++
	v.fetching = false
}

// fetch asks the target for the group's keys.
func (v *deriveView) fetch() tea.Cmd {
	groupID := v.f.Value(fieldGroup)
	if groupID == "" || v.c.Target == nil || v.c.Target.Service == nil {
		return nil
	}
	v.fetchGen++
	v.fetching = true
	gen, svc, ctx := v.fetchGen, v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		att, err := svc.GetEnrollmentGroupAttestation(ctx, groupID)
		return attestationMsg{gen: gen, groupID: groupID, att: att, err: err}
	})
}

func (v *deriveView) Update(msg tea.Msg) tea.Cmd {
	k := v.c.Keys
	switch msg := msg.(type) {
	case attestationMsg:
		if msg.gen != v.fetchGen {
			return nil
		}
		v.fetching = false
		if msg.err != nil {
			v.keyErr = dps.ErrorMessage(msg.err)
			return nil
		}
		v.applyAttestation(msg.groupID, msg.att)
		return nil
	case tea.PasteMsg:
		cmd, changed := v.f.Paste(msg)
		if changed {
			v.recompute()
		}
		return cmd
	case tea.KeyPressMsg:
		switch {
		case v.f.Matches(k.Copy, msg):
			return v.copy()
		case k.KeySource.Matches(msg):
			v.setSource((v.source + 1) % 3)
			v.recompute()
			return v.f.FocusOn(fieldGroup)
		case v.f.Matches(k.Reveal, msg):
			v.revealed = !v.revealed
			if v.source == sourceTyped {
				v.f.Inputs[fieldGroup].EchoMode = map[bool]textinput.EchoMode{true: textinput.EchoNormal, false: textinput.EchoPassword}[v.revealed]
			}
			return nil
		case k.Submit.Matches(msg) && v.f.Focus() == fieldGroup && v.source != sourceTyped:
			return v.fetch()
		case k.Submit.Matches(msg) && v.f.Editing():
			return v.f.FocusOn((v.f.Focus() + 1) % 2)
		}
		cmd, changed := v.f.Update(msg)
		if changed {
			if v.f.Focus() == fieldGroup && v.source != sourceTyped {
				v.groupKey, v.fetchedFrom = keys.Key{}, ""
				v.dropFetch()
			}
			v.recompute()
		}
		return cmd
	}
	return nil
}

func (v *deriveView) applyAttestation(groupID string, att dps.AttestationMechanism) {
	if att.Type != dps.AttestationSymmetricKey || att.SymmetricKey == nil {
		v.keyErr = fmt.Sprintf("group %s uses %s attestation; only symmetric-key groups derive device keys", groupID, att.Type)
		return
	}
	raw := att.SymmetricKey.PrimaryKey
	if v.source == sourceSecondary {
		raw = att.SymmetricKey.SecondaryKey
	}
	key, err := keys.ParseKey(raw.Reveal())
	if err != nil {
		v.keyErr = "the group's key is not usable: " + err.Error()
		return
	}
	v.groupKey, v.fetchedFrom, v.keyErr = key, groupID, ""
	v.recompute()
}

// recompute validates both fields and derives the key: no I/O, so it runs
// on every keystroke.
func (v *deriveView) recompute() {
	if v.source == sourceTyped {
		v.groupKey, v.keyErr = keys.Key{}, ""
		if s := v.f.Value(fieldGroup); s != "" {
			k, err := keys.ParseKey(s)
			if err != nil {
				v.keyErr = err.Error()
			} else {
				v.groupKey = k
			}
		}
	}
	id := v.f.Inputs[fieldRegID].Value()
	v.regErr, v.regWarn, v.device = "", "", keys.Key{}
	if id == "" {
		return
	}
	if err := keys.ValidateRegistrationID(id); err != nil {
		v.regErr = err.Error()
		var re *keys.RegistrationIDError
		if errors.As(err, &re) && re.Pos > 0 {
			v.regErr = fmt.Sprintf("%s^ %s", strings.Repeat(" ", re.Pos-1), err.Error())
		}
		return
	}
	v.regWarn = keys.RegistrationIDWarning(id)
	if !v.groupKey.IsZero() {
		if d, err := keys.DeriveDeviceKey(v.groupKey, id); err == nil {
			v.device = d
		}
	}
}

func (v *deriveView) copy() tea.Cmd {
	if v.device.IsZero() {
		return flashWarn("nothing to copy yet: give a valid group key and registration ID")
	}
	return tea.Batch(tea.SetClipboard(v.device.Base64()), flash("device key copied to the clipboard (OSC 52)"))
}

func (v *deriveView) View() string {
	st := v.c.Styles
	const lw = 16
	var left []string
	left = append(left, st.Label.Render("  Key source       ")+st.Value.Render(v.source.String())+st.Muted.Render("  (ctrl+s changes)"))
	note := ""
	switch {
	case v.fetching:
		note = st.Muted.Render("fetching the group's keys…")
	case v.keyErr != "":
		note = v.f.ErrorNote(v.keyErr, lw, v.c.Width)
	case v.fetchedFrom != "":
		note = st.OK.Render("key loaded from group " + v.fetchedFrom + " (" + v.groupKey.String() + ")")
	case v.source != sourceTyped:
		note = st.Muted.Render("press enter to load the group's key")
	}
	left = append(left, v.f.Row(fieldGroup, lw, note))
	note = ""
	switch {
	case v.regErr != "":
		note = v.f.ErrorNote(v.regErr, lw, v.c.Width)
	case v.regWarn != "":
		note = st.Warning.Render("⚠ " + v.regWarn)
	}
	left = append(left, v.f.Row(fieldRegID, lw, note), "")
	devKey := st.Muted.Render("—")
	if !v.device.IsZero() {
		devKey = st.OK.Render(v.device.Base64())
	}
	left = append(left, st.Label.Render("  Device key       ")+devKey)
	cmds := v.commands()
	body := strings.Join(left, "\n")
	if v.c.Width >= wideDerive {
		left := lipgloss.NewStyle().Width(v.c.Width - commandsWidth - 1).Render(body)
		return lipgloss.JoinHorizontal(lipgloss.Top, left, " ", st.Box.Render(cmds))
	}
	return body + "\n\n" + st.Box.Render(cmds)
}

// commands shows the shell equivalents. The group key appears only when
// revealed; otherwise they read it from $GROUP_KEY.
func (v *deriveView) commands() string {
	st := v.c.Styles
	id := v.f.Inputs[fieldRegID].Value()
	if id == "" || v.regErr != "" {
		id = "<registration-id>"
	}
	key := `"$GROUP_KEY"`
	if v.revealed && !v.groupKey.IsZero() {
		key = "'" + v.groupKey.Base64() + "'"
	}
	// Multi-line shell commands: they fit 80 columns and still paste whole.
	lines := []string{
		st.Title.Render("Same thing from a shell"),
		st.Code.Render("dpsconsole keys derive \\"),
		st.Code.Render("  --group-key " + key + " \\"),
		st.Code.Render("  --registration-id '" + id + "'"),
		"",
		st.Code.Render(fmt.Sprintf("keybytes=$(printf '%%s' %s \\", key)),
		st.Code.Render("  | base64 --decode | xxd -p -u -c 1000)"),
		st.Code.Render(fmt.Sprintf("printf '%%s' '%s' \\", id)),
		st.Code.Render("  | openssl sha256 -mac HMAC -macopt \"hexkey:$keybytes\" -binary \\"),
		st.Code.Render("  | base64"),
	}
	if !v.revealed {
		lines = append(lines, "", st.Muted.Render("GROUP_KEY holds the group key ("+v.c.Keys.Reveal.Help().Key+" shows it here)."))
	}
	return strings.Join(lines, "\n")
}
