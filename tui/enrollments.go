package tui

import (
	"encoding/json"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// enrollmentsView lists individual enrollments; it shows, creates (with a
// symmetric key) and deletes them.
type enrollmentsView struct {
	c       *Common
	vid     int
	table   *Table[dps.IndividualEnrollment]
	gen     int
	token   string
	loading bool
	working bool
	confirm *confirm
	// shown is the enrollment opened with enter; nil = the list.
	shown   *dps.IndividualEnrollment
	showGen int // the latest enter: an older read arriving late is dropped
	create  *form
	err     string
}

type enrollmentsPageMsg struct {
	gen   int
	items []dps.IndividualEnrollment
	token string
	err   error
}

// enrollmentShownMsg carries one enrollment read in full (keys included).
type enrollmentShownMsg struct {
	gen int
	e   dps.IndividualEnrollment
	err error
}

type enrollmentChangedMsg struct {
	what string
	err  error
}

func newEnrollmentsView(c *Common) *enrollmentsView {
	v := &enrollmentsView{c: c, vid: c.newID()}
	v.table = NewTable(c, v.vid, []Column{
		{"REGISTRATION ID", 0, 0, 2}, {"ATTESTATION", 12, 100, 0}, {"STATUS", 8, 0, 0}, {"DEVICE ID", 0, 0, 1}, {"REGISTRATION", 12, 0, 0}, {"HUB", 0, 0, 1},
	}, func(e dps.IndividualEnrollment) string { return e.RegistrationID },
		func(e dps.IndividualEnrollment) []string {
			reg, hub := "—", ""
			if s := e.RegistrationState; s != nil {
				reg, hub = string(s.Status), s.AssignedHub
			}
			return []string{e.RegistrationID, string(e.Attestation.Type), string(e.ProvisioningStatus), e.DeviceID, reg, hub}
		},
		func(e dps.IndividualEnrollment, q string) bool {
			return containsFold(e.RegistrationID, q) || containsFold(e.DeviceID, q)
		})
	return v
}

func (v *enrollmentsView) id() int       { return v.vid }
func (v *enrollmentsView) Title() string { return "Individual enrollments" }
func (v *enrollmentsView) Editing() bool {
	return v.table.Filtering() || v.confirm != nil || (v.create != nil && v.create.editing())
}
func (v *enrollmentsView) Busy() bool { return v.loading || v.working }
func (v *enrollmentsView) Status() string {
	return loadedCount(v.table.Loaded(), v.table.More()) + " enrollments"
}
func (v *enrollmentsView) SetSize(w, h int) { v.table.SetSize(w, h) }

func (v *enrollmentsView) Hints() []*Binding {
	k := v.c.Keys
	if v.create != nil {
		return []*Binding{k.NextField, k.Submit, k.Reveal}
	}
	return []*Binding{k.Open, k.Filter, k.New, k.Delete, k.Refresh}
}

func (v *enrollmentsView) Init() tea.Cmd { return v.refresh() }

func (v *enrollmentsView) refresh() tea.Cmd {
	v.gen++
	v.table.Reset()
	v.token = ""
	return v.fetch()
}

func (v *enrollmentsView) fetch() tea.Cmd {
	v.loading = true
	gen, token, svc, ctx := v.gen, v.token, v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		page, err := svc.NewEnrollmentPager(&dps.PagerOptions{PageSize: groupPageSize, ContinuationToken: token}).NextPage(ctx)
		return enrollmentsPageMsg{gen: gen, items: page.Items, token: page.ContinuationToken, err: err}
	})
}

// Escape closes the detail, the create form or the filter before the view.
func (v *enrollmentsView) Escape() bool {
	if v.shown != nil || v.create != nil {
		v.shown, v.create, v.err = nil, nil, ""
		return true
	}
	return v.table.StopLoading() || v.table.ClearFilter()
}

func (v *enrollmentsView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case enrollmentsPageMsg:
		if msg.gen != v.gen {
			return nil
		}
		v.loading = false
		if msg.err != nil {
			return flashErr(fmt.Errorf("listing enrollments: %s", dps.ErrorMessage(msg.err)))
		}
		v.token = msg.token
		v.table.Append(msg.items, msg.token != "")
		if !v.loading && v.table.WantsMore() {
			return v.fetch()
		}
		return nil
	case recordsChangedMsg:
		if msg.group == "" { // a device registered with a pasted key, maybe one of these
			return v.refresh()
		}
		return nil
	case enrollmentShownMsg:
		if msg.gen != v.showGen {
			return nil
		}
		v.working = false
		if msg.err != nil {
			return flashErr(fmt.Errorf("reading the enrollment: %s", dps.ErrorMessage(msg.err)))
		}
		v.shown = &msg.e
		return nil
	case enrollmentChangedMsg:
		v.working = false
		if msg.err != nil {
			v.err = dps.ErrorMessage(msg.err)
			return flashErr(fmt.Errorf("%s: %s", msg.what, v.err))
		}
		v.create, v.err = nil, ""
		return tea.Batch(flash(msg.what), v.refresh())
	case tea.PasteMsg:
		if v.create != nil {
			cmd, _ := v.create.paste(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		return v.key(msg)
	}
	cmd, _ := v.table.Update(msg)
	return cmd
}

func (v *enrollmentsView) key(msg tea.KeyPressMsg) tea.Cmd {
	k := v.c.Keys
	if v.confirm != nil {
		c := v.confirm
		v.confirm = nil
		cmd, _ := c.answer(msg)
		return cmd
	}
	if v.create != nil {
		if v.create.revealKey(msg) {
			v.create.reveal()
			return nil
		}
		if msg.String() == "enter" && (!v.create.editing() || v.create.focus == 2) {
			v.create.focusOn(-1)
			return v.submit()
		}
		if msg.String() == "enter" {
			return v.create.focusOn(v.create.focus + 1)
		}
		cmd, _ := v.create.update(msg)
		return cmd
	}
	if v.shown != nil {
		return nil
	}
	if cmd, handled := v.table.Update(msg); handled {
		if !v.loading && v.table.WantsMore() {
			return tea.Batch(cmd, v.fetch())
		}
		return cmd
	}
	e, ok := v.table.Selected()
	switch {
	case k.Refresh.Matches(msg):
		return v.refresh()
	case k.New.Matches(msg):
		v.create = newForm(v.c, "Registration ID", "Primary key", "Enabled")
		v.create.inputs[1].Placeholder = "empty = generate a 64-byte key"
		v.create.mask(1)
		v.create.set(2, "yes")
		return v.create.focusOn(0)
	case !ok:
		return nil
	case k.Open.Matches(msg):
		v.working = true
		v.showGen++
		gen, id, svc, ctx := v.showGen, e.RegistrationID, v.c.Target.Service, v.c.Ctx
		return do(v.vid, func() tea.Msg {
			full, err := svc.GetEnrollment(ctx, id)
			if err == nil && full.Attestation.Type == dps.AttestationSymmetricKey {
				full.Attestation, err = svc.GetEnrollmentAttestation(ctx, id)
			}
			return enrollmentShownMsg{gen: gen, e: full, err: err}
		})
	case k.Delete.Matches(msg):
		id, svc, ctx := e.RegistrationID, v.c.Target.Service, v.c.Ctx
		v.confirm = &confirm{
			text: fmt.Sprintf("Delete the individual enrollment %s?\nIts device can no longer register; its registration record stays until deleted.", id),
			choices: []choice{{"y", "delete it", func() tea.Cmd {
				v.working = true
				return do(v.vid, func() tea.Msg {
					if err := svc.DeleteEnrollment(ctx, id, nil); err != nil {
						return enrollmentChangedMsg{what: "deleting " + id, err: err}
					}
					return enrollmentChangedMsg{what: "deleted enrollment " + id}
				})
			}}},
		}
	}
	return nil
}

func (v *enrollmentsView) submit() tea.Cmd {
	if v.working { // a second enter would PUT again, with new generated keys
		return nil
	}
	f := v.create
	id := f.value(0)
	if err := keys.ValidateRegistrationID(id); err != nil {
		v.err = "Registration ID: " + err.Error()
		return nil
	}
	key := keys.GenerateKey()
	if s := f.value(1); s != "" {
		k, err := keys.ParseKey(s)
		if err != nil {
			v.err = "Primary key: " + err.Error()
			return nil
		}
		key = k
	}
	status := dps.ProvisioningEnabled
	if e := f.value(2); e == "no" || e == "n" || e == "false" {
		status = dps.ProvisioningDisabled
	}
	e := dps.IndividualEnrollment{
		RegistrationID: id, ProvisioningStatus: status,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: dps.Secret(key.Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}},
	}
	v.working, v.err = true, ""
	svc, ctx := v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		if _, err := svc.CreateOrUpdateEnrollment(ctx, e, nil); err != nil {
			return enrollmentChangedMsg{what: "creating " + id, err: err}
		}
		return enrollmentChangedMsg{what: "created enrollment " + id}
	})
}

func (v *enrollmentsView) View() string {
	st := v.c.Styles
	switch {
	case v.confirm != nil:
		return v.confirm.view(v.c)
	case v.create != nil:
		lines := []string{st.Title.Render("New individual enrollment (symmetric key)"), ""}
		for i := range v.create.inputs {
			lines = append(lines, v.create.row(i, 16, ""))
		}
		if v.err != "" {
			lines = append(lines, "", st.Error.Render(v.err))
		}
		return strings.Join(append(lines, "", st.Muted.Render("enter on the last field creates it; esc cancels")), "\n")
	case v.shown != nil:
		// Keys are Secrets: they marshal in clear, so mask them first.
		e := *v.shown
		if e.Attestation.SymmetricKey != nil {
			e.Attestation.SymmetricKey = &dps.SymmetricKeyAttestation{PrimaryKey: dps.Secret(e.Attestation.SymmetricKey.PrimaryKey.String()),
				SecondaryKey: dps.Secret(e.Attestation.SymmetricKey.SecondaryKey.String())}
		}
		b, _ := json.MarshalIndent(e, "", "  ")
		return st.Title.Render("Enrollment "+e.RegistrationID) + "\n" + st.Code.Render(string(b)) + "\n" + st.Muted.Render("esc goes back to the list")
	}
	return v.table.View()
}
