package tui

import (
	"encoding/json"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
	"github.com/dpsconsole/dpsconsole/tui/components/form"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
)

// enrollmentsView lists individual enrollments; it shows, creates (with a
// symmetric key) and deletes them.
type enrollmentsView struct {
	c       *Common
	vid     int
	table   *table.Table[dps.IndividualEnrollment]
	gen     int
	token   string
	loading bool
	working bool
	confirm *confirm.Dialog
	// shown is the enrollment opened with enter; nil = the list.
	shown   *dps.IndividualEnrollment
	showGen int  // the latest enter: an older read arriving late is dropped
	showTop int  // first line of the detail shown: long JSON scrolls
	reveal  bool // the detail shows the keys in clear
	create  *form.Form
	err     string
	opening string // the enrollment :enrollment asked for, shown once read
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
	what    string
	err     error
	nothing bool // nothing to do: the flash says so as a warning
}

func newEnrollmentsView(c *Common) *enrollmentsView {
	v := &enrollmentsView{c: c, vid: c.newID()}
	v.table = newTable(c, v.vid, []table.Column{
		{Title: "REGISTRATION ID", Weight: 2, MaxWidth: 64}, {Title: "ATTESTATION", Width: 12, MinTable: 100}, {Title: "STATUS", Width: 8, Status: true},
		{Title: "DEVICE ID", Weight: 1, MaxWidth: 48}, {Title: "REGISTRATION", Width: 13, Status: true}, {Title: "ASSIGNED HUB", Weight: 1, MaxWidth: 48},
		{Title: "CREATED (UTC)", Width: 19, MinTable: 160}, {Title: "ERROR", Weight: 1, MinTable: 200},
	}, func(e dps.IndividualEnrollment) string { return e.RegistrationID },
		func(e dps.IndividualEnrollment) []string {
			reg, hub, failure := "—", "", ""
			if s := e.RegistrationState; s != nil {
				reg, hub, failure = string(s.Status), s.AssignedHub, registrationError(*s)
			}
			return []string{e.RegistrationID, string(e.Attestation.Type), string(e.ProvisioningStatus), e.DeviceID, reg, hub,
				stampCell(e.CreatedDateTimeUTC), failure}
		},
		func(e dps.IndividualEnrollment, q string) bool {
			return table.ContainsFold(e.RegistrationID, q) || table.ContainsFold(e.DeviceID, q)
		})
	return v
}

func (v *enrollmentsView) id() int       { return v.vid }
func (v *enrollmentsView) Title() string { return "Individual enrollments" }
func (v *enrollmentsView) Editing() bool {
	return v.table.Filtering() || v.confirm != nil || (v.create != nil && v.create.Editing())
}
func (v *enrollmentsView) Busy() bool { return v.loading || v.working }
func (v *enrollmentsView) Status() string {
	return loadedCount(v.table.Loaded(), v.table.More(), "enrollment", "enrollments")
}
func (v *enrollmentsView) SetSize(w, h int) {
	v.table.SetSize(w, h)
	if v.create != nil {
		v.create.SetWidth(min(w-20, 90))
	}
}

func (v *enrollmentsView) Hints() []*Binding {
	k := v.c.Keys
	switch {
	case v.confirm != nil:
		return nil // the dialog lists its keys
	case v.create != nil && v.create.Editing():
		return []*Binding{k.NextField, k.Submit, k.Reveal, k.Leave}
	case v.create != nil:
		return []*Binding{k.Submit, k.NextField, k.Reveal}
	case v.shown != nil:
		return []*Binding{k.Reveal, k.Copy, k.Down, k.Up, k.PageDown}
	case v.table.Filtering():
		return filterHints(k)
	}
	return []*Binding{k.Open, k.Describe, k.Filter, k.New, k.Toggle, k.Delete, k.Refresh}
}

// newEnrollmentView is the enrollments showing enrollment id (:enrollment).
func newEnrollmentView(c *Common, id string) *enrollmentsView {
	v := newEnrollmentsView(c)
	v.opening = id
	return v
}

func (v *enrollmentsView) Init() tea.Cmd {
	if v.opening != "" {
		return tea.Batch(v.refresh(), v.show(v.opening))
	}
	return v.refresh()
}

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
		v.shown, v.showTop, v.reveal = &msg.e, 0, false
		return nil
	case enrollmentChangedMsg:
		v.working = false
		if msg.err != nil {
			v.err = dps.ErrorMessage(msg.err)
			return flashErr(fmt.Errorf("%s: %s", msg.what, v.err))
		}
		v.create, v.err = nil, ""
		return tea.Batch(flashAt(levelFor(msg.nothing), msg.what), v.refresh())
	case tea.PasteMsg:
		if v.create != nil {
			cmd, _ := v.create.Paste(msg)
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
		return answer(c, msg)
	}
	if v.create != nil {
		if v.create.RevealKey(msg) {
			v.create.Reveal()
			return nil
		}
		if msg.String() == "enter" && (!v.create.Editing() || v.create.Focus() == 2) {
			v.create.FocusOn(-1)
			return v.submit()
		}
		if msg.String() == "enter" {
			return v.create.FocusOn(v.create.Focus() + 1)
		}
		cmd, _ := v.create.Update(msg)
		return cmd
	}
	if v.shown != nil {
		return v.detailKey(msg)
	}
	lookup := findOnEnter(v.table, msg)
	if cmd, handled := v.table.Update(msg); handled {
		if !v.loading && v.table.WantsMore() {
			return tea.Batch(cmd, v.fetch(), lookup)
		}
		return tea.Batch(cmd, lookup)
	}
	e, ok := v.table.Selected()
	switch {
	case k.Refresh.Matches(msg):
		return v.refresh()
	case k.New.Matches(msg):
		v.create = newForm(v.c, "Registration ID", "Primary key", "Enabled")
		v.create.Inputs[0].Placeholder = "e.g. sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
		v.create.Inputs[1].Placeholder = "empty = generate a 64-byte key"
		v.create.Inputs[2].Placeholder = "yes or no"
		v.create.Mask(1)
		v.create.Set(2, "yes")
		v.create.SetWidth(min(v.c.Width-20, 90))
		return v.create.FocusOn(0)
	case !ok:
		return nil
	case k.Open.Matches(msg):
		return v.show(e.RegistrationID)
	case k.Describe.Matches(msg):
		return v.c.open(newDescribeView(v.c, describeSubject{kind: describeEnrollment, id: e.RegistrationID}))
	case k.Toggle.Matches(msg):
		v.askToggle(e)
	case k.Delete.Matches(msg):
		id, svc, ctx := e.RegistrationID, v.c.Target.Service, v.c.Ctx
		v.confirm = &confirm.Dialog{
			Text: fmt.Sprintf("Delete the individual enrollment %s?\nIts device can no longer register; its registration record stays until deleted.", id),
			Choices: []confirm.Choice{{Key: "y", Label: "delete it", Run: func() tea.Cmd {
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

// show reads enrollment id in full and shows it.
func (v *enrollmentsView) show(id string) tea.Cmd {
	v.working = true
	v.showGen++
	gen, svc, ctx := v.showGen, v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		full, err := svc.GetEnrollment(ctx, id)
		if err == nil && full.Attestation.Type == dps.AttestationSymmetricKey {
			full.Attestation, err = svc.GetEnrollmentAttestation(ctx, id)
		}
		return enrollmentShownMsg{gen: gen, e: full, err: err}
	})
}

// askToggle asks before enabling or disabling the enrollment as listed.
func (v *enrollmentsView) askToggle(e dps.IndividualEnrollment) {
	id := e.RegistrationID
	v.confirm = toggleConfirm(e.ProvisioningStatus,
		fmt.Sprintf("Disable the individual enrollment %s?\n"+
			"Its device can no longer register or re-register; if it is in its IoT hub, it stays there.", id),
		fmt.Sprintf("Enable the individual enrollment %s?\nIts device can register again.", id),
		func(next dps.ProvisioningStatus) tea.Cmd { return v.setStatus(id, next) })
}

// setStatus enables or disables an enrollment: the status confirmed, not
// the opposite of what it is by then. DPS replaces the whole enrollment on
// PUT, so its keys are read and sent back unchanged, under its ETag.
func (v *enrollmentsView) setStatus(id string, next dps.ProvisioningStatus) tea.Cmd {
	v.working = true
	svc, ctx := v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		cur, err := svc.GetEnrollment(ctx, id)
		if err == nil && cur.Attestation.Type == dps.AttestationSymmetricKey {
			cur.Attestation, err = svc.GetEnrollmentAttestation(ctx, id)
		}
		if err != nil {
			return enrollmentChangedMsg{what: "reading " + id, err: err}
		}
		if cur.ProvisioningStatus == next {
			return enrollmentChangedMsg{what: fmt.Sprintf("enrollment %s is %s already", id, next), nothing: true}
		}
		cur.ProvisioningStatus = next
		etag := azcore.ETag(cur.ETag)
		if _, err := svc.CreateOrUpdateEnrollment(ctx, cur, &dps.WriteOptions{IfMatch: &etag}); err != nil {
			return enrollmentChangedMsg{what: "updating " + id, err: err}
		}
		return enrollmentChangedMsg{what: fmt.Sprintf("enrollment %s is now %s", id, next)}
	})
}

// detailKey reveals, copies and scrolls the enrollment shown.
func (v *enrollmentsView) detailKey(msg tea.KeyPressMsg) tea.Cmd {
	k := v.c.Keys
	sk := v.shown.Attestation.SymmetricKey
	page := max(v.detailHeight()-1, 1)
	switch {
	case k.Reveal.Matches(msg):
		v.reveal = !v.reveal
	case k.Copy.Matches(msg):
		if sk == nil {
			return flashWarn("this enrollment has no symmetric keys to copy")
		}
		return tea.Batch(tea.SetClipboard(sk.PrimaryKey.Reveal()), flash("primary key copied to the clipboard (OSC 52)"))
	default:
		k.scrollKey(msg, &v.showTop, page, len(v.detailLines()))
	}
	v.showTop = max(min(v.showTop, len(v.detailLines())-v.detailHeight()), 0)
	return nil
}

// detailHeight is the lines of JSON that fit under the title and the note.
func (v *enrollmentsView) detailHeight() int { return max(v.c.Height-2, 1) }

// detailLines is the enrollment as indented JSON, keys masked unless revealed.
func (v *enrollmentsView) detailLines() []string {
	e := *v.shown
	// Keys are Secrets: they marshal in clear, so mask them unless revealed.
	if sk := e.Attestation.SymmetricKey; sk != nil && !v.reveal {
		e.Attestation.SymmetricKey = &dps.SymmetricKeyAttestation{PrimaryKey: dps.Secret(sk.PrimaryKey.String()),
			SecondaryKey: dps.Secret(sk.SecondaryKey.String())}
	}
	// So is a webhook URL's password and query (the function's key).
	if c := e.CustomAllocationDefinition; c != nil && !v.reveal {
		masked := *c
		masked.WebhookURL = keys.MaskURL(c.WebhookURL)
		e.CustomAllocationDefinition = &masked
	}
	b, _ := json.MarshalIndent(e, "", "  ")
	// Wrapped to the width: a revealed key outgrows 80 columns, and a cut
	// line would lose the key's end.
	return strings.Split(ansi.Hardwrap(string(b), max(v.c.Width, 20), false), "\n")
}

func (v *enrollmentsView) submit() tea.Cmd {
	if v.working { // a second enter would PUT again, with new generated keys
		return nil
	}
	f := v.create
	id := f.Value(0)
	if err := keys.ValidateRegistrationID(id); err != nil {
		v.err = "Registration ID: " + err.Error()
		return nil
	}
	key := keys.GenerateKey()
	if s := f.Value(1); s != "" {
		k, err := keys.ParseKey(s)
		if err != nil {
			v.err = "Primary key: " + err.Error()
			return nil
		}
		key = k
	}
	status := dps.ProvisioningEnabled
	if e := f.Value(2); e == "no" || e == "n" || e == "false" {
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
		return v.confirm.View(v.c.Styles, v.c.Width)
	case v.create != nil:
		lines := []string{st.Title.Render("New individual enrollment (symmetric key)"), ""}
		for i := range v.create.Inputs {
			lines = append(lines, v.create.Row(i, 16, ""))
		}
		if v.err != "" {
			lines = append(lines, "", errorText(v.c, v.err))
		}
		return strings.Join(append(lines, "", st.Muted.Render("enter on the last field creates it; esc cancels")), "\n")
	case v.shown != nil:
		lines := v.detailLines()
		h := v.detailHeight()
		top := min(v.showTop, max(len(lines)-h, 0))
		shown := lines[top:min(top+h, len(lines))]
		k := v.c.Keys
		note := fmt.Sprintf("%s reveals keys, %s copies the primary key, esc goes back", k.Reveal.Help().Key, k.Copy.Help().Key)
		if len(lines) > h {
			note = fmt.Sprintf("lines %d–%d of %d, ↑/↓ scroll; ", top+1, top+len(shown), len(lines)) + note
		}
		return st.Title.Render("Enrollment "+v.shown.RegistrationID) + "\n" + st.Code.Render(strings.Join(shown, "\n")) + "\n" + st.Muted.Render(note)
	}
	return v.table.View()
}
