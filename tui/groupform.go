package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/form"
)

// Group form fields.
const (
	gfID = iota
	gfPrimary
	gfSecondary
	gfAllocation
	gfHubs
	gfReprovision
	gfEnabled
)

// groupFormView creates a symmetric-key enrollment group.
type groupFormView struct {
	c      *Common
	vid    int
	owner  int // the groups view to refresh
	f      *form.Form
	err    string
	saving bool
}

func newGroupFormView(c *Common, owner int) *groupFormView {
	v := &groupFormView{c: c, vid: c.newID(), owner: owner,
		f: newForm(c, "Group ID", "Primary key", "Secondary key", "Allocation", "Hubs", "Reprovision", "Enabled")}
	v.f.Inputs[gfPrimary].Placeholder = "empty = generate a 64-byte key"
	v.f.Inputs[gfSecondary].Placeholder = "empty = generate a 64-byte key"
	v.f.Mask(gfPrimary, gfSecondary)
	v.f.Inputs[gfHubs].Placeholder = "comma-separated host names; empty = every linked hub"
	v.f.Set(gfAllocation, "hashed")
	v.f.Set(gfReprovision, "migrate")
	v.f.Set(gfEnabled, "yes")
	return v
}

func (v *groupFormView) id() int          { return v.vid }
func (v *groupFormView) Title() string    { return "New enrollment group" }
func (v *groupFormView) Editing() bool    { return v.f.Editing() }
func (v *groupFormView) Busy() bool       { return v.saving }
func (v *groupFormView) Status() string   { return "" }
func (v *groupFormView) SetSize(w, _ int) { v.f.SetWidth(min(w-20, 90)) }
func (v *groupFormView) Hints() []*Binding {
	k := v.c.Keys
	if v.f.Editing() {
		return []*Binding{k.NextField, k.Submit, k.Reveal, k.Leave}
	}
	return []*Binding{k.Submit, k.NextField, k.Reveal}
}
func (v *groupFormView) Init() tea.Cmd { return v.f.FocusOn(gfID) }

type groupCreatedMsg struct {
	id  string
	err error
}

func (v *groupFormView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case groupCreatedMsg:
		v.saving = false
		if msg.err != nil {
			v.err = dps.ErrorMessage(msg.err)
			return nil
		}
		owner := v.owner
		return tea.Batch(back(v.vid), func() tea.Msg {
			return routed{to: owner, msg: groupChangedMsg{what: "created enrollment group " + msg.id}}
		})
	case tea.PasteMsg:
		cmd, _ := v.f.Paste(msg)
		return cmd
	case tea.KeyPressMsg:
		if v.f.RevealKey(msg) {
			v.f.Reveal()
			return nil
		}
		if msg.String() == "enter" && (!v.f.Editing() || v.f.Focus() == gfEnabled) {
			return v.submit()
		}
		if msg.String() == "enter" {
			return v.f.FocusOn(v.f.Focus() + 1)
		}
		cmd, _ := v.f.Update(msg)
		return cmd
	}
	return nil
}

// build validates the form into a group; errors name the field.
func (v *groupFormView) build() (dps.EnrollmentGroup, error) {
	id := v.f.Value(gfID)
	if id == "" {
		return dps.EnrollmentGroup{}, fmt.Errorf("Group ID: give an ID (letters, digits, - . _ :)")
	}
	if err := keys.ValidateRegistrationID(id); err != nil {
		return dps.EnrollmentGroup{}, fmt.Errorf("Group ID: %s", strings.TrimPrefix(err.Error(), "invalid registration ID: "))
	}
	key := func(field int, name string) (dps.Secret, error) {
		s := v.f.Value(field)
		if s == "" {
			return dps.Secret(keys.GenerateKey().Base64()), nil
		}
		k, err := keys.ParseKey(s)
		if err != nil {
			return "", fmt.Errorf("%s: %s", name, err)
		}
		return dps.Secret(k.Base64()), nil
	}
	primary, err := key(gfPrimary, "Primary key")
	if err != nil {
		return dps.EnrollmentGroup{}, err
	}
	secondary, err := key(gfSecondary, "Secondary key")
	if err != nil {
		return dps.EnrollmentGroup{}, err
	}
	g := dps.EnrollmentGroup{
		EnrollmentGroupID: id,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey,
			SymmetricKey: &dps.SymmetricKeyAttestation{PrimaryKey: primary, SecondaryKey: secondary}},
		ProvisioningStatus: dps.ProvisioningEnabled,
	}
	switch a := dps.AllocationPolicy(v.f.Value(gfAllocation)); a {
	case dps.AllocationHashed, dps.AllocationStatic, dps.AllocationGeoLatency:
		g.AllocationPolicy = a
	default:
		return g, fmt.Errorf("Allocation: %q is not hashed, static or geoLatency", a)
	}
	for _, h := range strings.Split(v.f.Value(gfHubs), ",") {
		if h = strings.TrimSpace(h); h != "" {
			g.IoTHubs = append(g.IoTHubs, h)
		}
	}
	if g.AllocationPolicy == dps.AllocationStatic && len(g.IoTHubs) != 1 {
		return g, fmt.Errorf("Hubs: static allocation needs exactly one hub")
	}
	switch v.f.Value(gfReprovision) {
	case "migrate":
		g.ReprovisionPolicy = &dps.ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}
	case "reset":
		g.ReprovisionPolicy = &dps.ReprovisionPolicy{UpdateHubAssignment: true}
	case "never":
		g.ReprovisionPolicy = &dps.ReprovisionPolicy{}
	default:
		return g, fmt.Errorf("Reprovision: give migrate, reset or never")
	}
	switch v.f.Value(gfEnabled) {
	case "yes", "y", "true":
	case "no", "n", "false":
		g.ProvisioningStatus = dps.ProvisioningDisabled
	default:
		return g, fmt.Errorf("Enabled: give yes or no")
	}
	return g, nil
}

func (v *groupFormView) submit() tea.Cmd {
	if v.saving { // a second enter would PUT again, with new generated keys
		return nil
	}
	g, err := v.build()
	if err != nil {
		v.err = err.Error()
		return nil
	}
	v.err, v.saving = "", true
	svc, ctx := v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		_, err := svc.CreateOrUpdateEnrollmentGroup(ctx, g, nil)
		return groupCreatedMsg{id: g.EnrollmentGroupID, err: err}
	})
}

func (v *groupFormView) View() string {
	st := v.c.Styles
	notes := map[int]string{
		gfAllocation:  "hashed, static or geoLatency",
		gfReprovision: "migrate, reset or never (what a re-registering device does)",
		gfEnabled:     "yes or no",
	}
	var lines []string
	for i := range v.f.Inputs {
		lines = append(lines, v.f.Row(i, 14, st.Muted.Render(notes[i])))
	}
	lines = append(lines, "")
	if v.err != "" {
		lines = append(lines, errorText(v.c, v.err))
	}
	lines = append(lines, st.Muted.Render("enter on the last field (or outside the fields) creates the group; esc leaves the fields"))
	return strings.Join(lines, "\n")
}
