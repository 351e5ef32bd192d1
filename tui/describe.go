package tui

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	describepane "github.com/dpsconsole/dpsconsole/tui/components/describe"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
)

// describeKind is what a describe view shows.
type describeKind int

const (
	describeGroup describeKind = iota
	describeEnrollment
	describeRecord
	describeHubDevice
)

func (k describeKind) String() string {
	return [...]string{"enrollment group", "enrollment", "registration record", "hub device"}[k]
}

// describeSubject names the row described.
type describeSubject struct {
	kind describeKind
	id   string // group ID, registration ID or device ID
	hub  string // a hub device's hub
	// group is a record's enrollment group when the view it came from knows
	// it (a record does not name it; a found one is looked up on o).
	group string
}

// describeDoc is one JSON document as the service sent it, with the
// request that read it.
type describeDoc struct {
	method, path string
	body         json.RawMessage
}

type describeLoadedMsg struct {
	gen    int
	docs   []describeDoc
	record *dps.DeviceRegistrationState // a record's, or an enrollment's registrationState
	err    error
}

// describeView shows any row as the service sent it: its JSON (keys masked
// until v), what a record's state means, and the same reads from a shell.
type describeView struct {
	c       *Common
	vid     int
	subject describeSubject
	pane    *describepane.Model
	gen     int // of the read in flight: r outdates older ones
	loading bool
	docs    []describeDoc
	record  *dps.DeviceRegistrationState
	err     string
	// resolving is the lookup of a found record's group (o) in flight.
	resolving bool
	// overGroup: opened from its group's records, which o goes back to.
	overGroup bool
}

func newDescribeView(c *Common, s describeSubject) *describeView {
	v := &describeView{c: c, vid: c.newID(), subject: s}
	v.pane = describepane.New(c.Styles, c.Width, c.Height)
	return v
}

func (v *describeView) id() int { return v.vid }
func (v *describeView) Title() string {
	return "Describe " + v.subject.kind.String() + " " + v.subject.id
}
func (v *describeView) Editing() bool { return false }
func (v *describeView) Busy() bool    { return v.loading || v.resolving }
func (v *describeView) Status() string {
	if v.record != nil && v.record.Status != "" {
		return string(v.record.Status)
	}
	return ""
}

func (v *describeView) SetSize(w, h int) { v.pane.SetSize(w, h-v.headHeight()) }

// headHeight is the lines the error or "reading…" takes above the pane.
func (v *describeView) headHeight() int {
	if h := v.head(); h != "" {
		return strings.Count(h, "\n") + 1
	}
	return 0
}

func (v *describeView) Hints() []*Binding {
	k := v.c.Keys
	hints := []*Binding{k.CopyID, k.Reveal}
	switch v.subject.kind {
	case describeRecord:
		hints = append([]*Binding{k.GoGroup, openHubDeviceHint}, hints...)
	case describeGroup:
		hints = append([]*Binding{k.GoGroup}, hints...)
	}
	return append(hints, k.Refresh)
}

// openHubDeviceHint is what enter (k.Open) does on a record's describe.
var openHubDeviceHint = bind("enter", "its hub device", "enter")

func (v *describeView) Init() tea.Cmd {
	if v.docs != nil { // :find read it already: one round trip
		v.layout()
		return nil
	}
	return v.read()
}

func (v *describeView) read() tea.Cmd {
	v.gen++
	v.loading = true
	v.SetSize(v.c.Width, v.c.Height) // "reading…" may take a line
	gen, t, s, ctx := v.gen, v.c.Target, v.subject, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		msg := readDescribe(ctx, t, s)
		msg.gen = gen
		return msg
	})
}

// loaded shows what a read (or :find) brought.
func (v *describeView) loaded(msg describeLoadedMsg) {
	v.loading = false
	if msg.err != nil {
		v.err = describeError(v.subject, msg.err)
		if dps.IsNotFound(msg.err) || hub.IsNotFound(msg.err) { // deleted meanwhile: what was shown is gone
			v.docs, v.record = nil, nil
		}
	} else {
		v.docs, v.record, v.err = msg.docs, msg.record, ""
	}
	v.layout()
}

func describeError(s describeSubject, err error) string {
	if dps.IsNotFound(err) || hub.IsNotFound(err) {
		return fmt.Sprintf("%s %s does not exist (any more): %s", s.kind, s.id, dps.ErrorMessage(err))
	}
	return fmt.Sprintf("reading %s %s: %s", s.kind, s.id, dps.ErrorMessage(err))
}

func (v *describeView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case describeLoadedMsg:
		if msg.gen != v.gen {
			return nil
		}
		v.loaded(msg)
		return nil
	case groupResolvedMsg:
		return v.resolved(msg)
	case tea.KeyPressMsg:
		return v.key(msg)
	}
	return nil
}

func (v *describeView) key(msg tea.KeyPressMsg) tea.Cmd {
	k := v.c.Keys
	switch {
	case k.Refresh.Matches(msg):
		return v.read()
	case k.Reveal.Matches(msg):
		v.pane.Reveal(!v.pane.Revealed())
	case k.CopyID.Matches(msg):
		return tea.Batch(tea.SetClipboard(v.subject.id), flash(v.subject.kind.String()+" ID "+v.subject.id+" copied to the clipboard (OSC 52)"))
	case k.CopyJSON.Matches(msg):
		return v.copyJSON()
	case k.GoGroup.Matches(msg):
		return v.goGroup()
	case k.Open.Matches(msg):
		return v.goHubDevice()
	default:
		top := v.pane.Top()
		k.scrollKey(msg, &top, max(v.pane.Page()-1, 1), v.pane.Len())
		v.pane.ScrollTo(top)
	}
	return nil
}

// copyJSON copies the documents as shown: keys stay masked unless revealed.
func (v *describeView) copyJSON() tea.Cmd {
	if v.docs == nil {
		return flashWarn("nothing read yet to copy; r reads it again")
	}
	parts := make([]string, len(v.docs))
	for i, d := range v.docs {
		parts[i] = describepane.Pretty(d.body, v.pane.Revealed())
	}
	what := "JSON of " + v.subject.kind.String() + " " + v.subject.id + " copied to the clipboard (OSC 52)"
	if !v.pane.Revealed() && strings.Contains(strings.Join(parts, ""), describepane.Mask) {
		what += "; its keys masked (v reveals them first)"
	}
	return tea.Batch(tea.SetClipboard(strings.Join(parts, "\n")), flash(what))
}

func (v *describeView) goHubDevice() tea.Cmd {
	r := v.record
	switch {
	case v.subject.kind == describeGroup:
		return v.goGroup()
	case v.subject.kind != describeRecord:
		return nil
	case r == nil:
		return flashWarn("the record is not read yet; wait for it or press r")
	case r.AssignedHub == "":
		return flashWarn(fmt.Sprintf("registration record %s is %s and names no hub: it has no hub device to show", r.RegistrationID, cmp.Or(string(r.Status), "without a status")))
	}
	return v.c.open(newHubDeviceView(v.c, cmp.Or(r.DeviceID, r.RegistrationID), r.AssignedHub))
}

func (v *describeView) goGroup() tea.Cmd {
	switch v.subject.kind {
	case describeGroup:
		return v.c.open(newGroupView(v.c, v.subject.id))
	case describeRecord:
		if v.overGroup {
			return back(v.vid)
		}
		if v.subject.group != "" {
			return v.c.open(newGroupView(v.c, v.subject.group))
		}
		if v.record == nil {
			return flashWarn("the record is not read yet; wait for it or press r")
		}
		if v.resolving {
			return flashWarn("still looking for the enrollment of " + v.subject.id)
		}
		v.resolving = true
		return resolveGroup(v.c, v.vid, *v.record)
	}
	return nil
}

// resolved opens the enrollment found for the record, or says why none was.
func (v *describeView) resolved(msg groupResolvedMsg) tea.Cmd {
	v.resolving = false
	switch {
	case msg.err != nil:
		return flashErr(msg.err)
	case msg.enrollment:
		return v.c.open(newDescribeView(v.c, describeSubject{kind: describeEnrollment, id: v.subject.id}))
	}
	v.subject.group = msg.group
	return v.c.open(newGroupView(v.c, msg.group))
}

func (v *describeView) head() string {
	if v.err != "" {
		return errorText(v.c, v.err)
	}
	if v.loading && v.docs == nil {
		return v.c.Styles.Muted.Render("reading " + v.subject.kind.String() + " " + v.subject.id + "…")
	}
	return ""
}

func (v *describeView) View() string {
	if h := v.head(); h != "" {
		return h + "\n" + v.pane.View()
	}
	return v.pane.View()
}

// layout fills the pane: what a record's state means, the shell commands,
// then each document as sent.
func (v *describeView) layout() {
	var blocks []describepane.Block
	if v.record != nil {
		if lines := recordMeaning(*v.record); lines != nil {
			title := "What its state means"
			if v.subject.kind == describeEnrollment {
				title = "Its registration state means"
			}
			blocks = append(blocks, describepane.Block{Title: title, Lines: lines})
		}
	}
	blocks = append(blocks, describepane.Block{Title: "Same thing from a shell", Lines: describeCommands(v.c.Target, v.subject), Code: true})
	for _, d := range v.docs {
		blocks = append(blocks, describepane.Block{Title: d.method + " " + d.path, JSON: d.body})
	}
	v.pane.SetBlocks(blocks...)
	v.SetSize(v.c.Width, v.c.Height)
}

// readDescribe reads what the pane shows of s; it runs off the event loop.
func readDescribe(ctx context.Context, t *Target, s describeSubject) describeLoadedMsg {
	switch s.kind {
	case describeRecord:
		d, err := readDoc(ctx, t.Service, dps.ReadRegistrationState, s.id)
		if err != nil {
			return describeLoadedMsg{err: err}
		}
		var st dps.DeviceRegistrationState
		if err := json.Unmarshal(d.body, &st); err != nil {
			return describeLoadedMsg{err: fmt.Errorf("DPS sent a registration record that is not one: %w", err)}
		}
		return describeLoadedMsg{docs: []describeDoc{d}, record: &st}
	case describeGroup, describeEnrollment:
		read, keysRead := dps.ReadEnrollmentGroup, dps.ReadEnrollmentGroupKeys
		if s.kind == describeEnrollment {
			read, keysRead = dps.ReadEnrollment, dps.ReadEnrollmentKeys
		}
		d, err := readDoc(ctx, t.Service, read, s.id)
		if err != nil {
			return describeLoadedMsg{err: err}
		}
		var head struct {
			Attestation       dps.AttestationMechanism     `json:"attestation"`
			RegistrationState *dps.DeviceRegistrationState `json:"registrationState"`
		}
		_ = json.Unmarshal(d.body, &head) // the pane shows the body whatever it holds
		docs := []describeDoc{d}
		if head.Attestation.Type == dps.AttestationSymmetricKey { // GET leaves the keys out
			k, err := readDoc(ctx, t.Service, keysRead, s.id)
			if err != nil {
				return describeLoadedMsg{err: err}
			}
			docs = append(docs, k)
		}
		return describeLoadedMsg{docs: docs, record: head.RegistrationState}
	}
	reg, err := t.Registry(s.hub)
	if err != nil {
		return describeLoadedMsg{err: err}
	}
	dev, err := reg.GetDeviceJSON(ctx, s.id)
	if err != nil {
		return describeLoadedMsg{err: err}
	}
	twin, err := reg.GetTwinJSON(ctx, s.id)
	if err != nil {
		return describeLoadedMsg{err: err}
	}
	esc := url.PathEscape(s.id)
	return describeLoadedMsg{docs: []describeDoc{{http.MethodGet, "/devices/" + esc, dev}, {http.MethodGet, "/twins/" + esc, twin}}}
}

func readDoc(ctx context.Context, svc *dps.Client, r dps.RawRead, id string) (describeDoc, error) {
	path, _ := r.Path(id) // GetJSON reports a bad ID
	body, err := svc.GetJSON(ctx, r, id)
	return describeDoc{r.Method(), path, body}, err
}

// describeCommands are the same reads from a shell: dpsconsole, the Azure
// CLI (azure-iot extension) and curl with a token in $TOKEN: a SAS token,
// or on an Entra ID target a bearer token for the service's resource. A
// long command goes on two lines joined by a backslash: it fits 80 columns
// and still pastes whole.
func describeCommands(t *Target, s describeSubject) []string {
	id := shellQuote(s.id)
	host := t.Service.Host()
	entra := t.Auth == AuthEntraID
	var out []string
	add := func(head string, tail ...string) {
		if len(tail) == 0 {
			out = append(out, head)
			return
		}
		out = append(out, head+` \`, "  "+strings.Join(tail, " "))
	}
	auth := "$TOKEN"
	if entra {
		auth = "Bearer $TOKEN"
	}
	curl := func(method, path, api string) {
		opts := ""
		if method != http.MethodGet {
			opts = " -X " + method
		}
		if isLoopback(host) { // the emulator's own CA
			opts += ` --cacert "$DPS_CA_FILE"`
		}
		add(`curl`+opts+` -H "Authorization: `+auth+`"`, fmt.Sprintf("'https://%s%s?api-version=%s'", host, path, api))
	}
	dpsPath := func(r dps.RawRead) string { p, _ := r.Path(s.id); return p }
	login := `--login "$DPS_CONNECTION_STRING"`
	if entra {
		login = "--dps-name " + firstLabel(host) + " --auth-type login"
	}
	token := func(policy, scope string) {
		if entra {
			add("TOKEN=$(az account get-access-token --resource "+strings.TrimSuffix(scope, "/.default"), "--query accessToken -o tsv)")
			return
		}
		add("TOKEN=$(dpsconsole keys sas --resource "+host, "--policy "+policy+" --key-file policy.key)")
	}
	switch s.kind {
	case describeRecord:
		add("dpsconsole registrations show " + id + " --output json")
		add("az iot dps enrollment-group registration show", login, "--registration-id "+id)
		curl(http.MethodGet, dpsPath(dps.ReadRegistrationState), dps.APIVersion)
	case describeGroup, describeEnrollment:
		cli, az, read, keys := "groups", "enrollment-group", dps.ReadEnrollmentGroup, dps.ReadEnrollmentGroupKeys
		if s.kind == describeEnrollment {
			cli, az, read, keys = "enrollments", "enrollment", dps.ReadEnrollment, dps.ReadEnrollmentKeys
		}
		add("dpsconsole " + cli + " show " + id + " --output json --show-keys")
		add("az iot dps "+az+" show", login, "--enrollment-id "+id+" --show-keys")
		curl(http.MethodGet, dpsPath(read), dps.APIVersion)
		curl(http.MethodPost, dpsPath(keys), dps.APIVersion)
	default: // a hub device
		host = s.hub
		esc := url.PathEscape(s.id)
		hubLogin := `--login "$` + t.hubEnvName(s.hub) + `"`
		if entra {
			hubLogin = "--hub-name " + firstLabel(s.hub) + " --auth-type login"
		}
		add("dpsconsole hub device show "+id, "--hub "+s.hub+" --show-keys")
		add("az iot hub device-identity show", hubLogin, "--device-id "+id)
		add("az iot hub device-twin show", hubLogin, "--device-id "+id)
		curl(http.MethodGet, "/devices/"+esc, hub.APIVersion)
		curl(http.MethodGet, "/twins/"+esc, hub.APIVersion)
		token("iothubowner", hub.Scope)
		return out
	}
	token("provisioningserviceowner", dps.Scope)
	return out
}

// firstLabel is a service's name in its host: contoso of
// contoso.azure-devices-provisioning.net.
func firstLabel(host string) string { name, _, _ := strings.Cut(host, "."); return name }

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// describeRecordOf opens the selected record of a group's table.
func describeRecordOf(c *Common, t *table.Table[record], group string) tea.Cmd {
	r, ok := t.Selected()
	if !ok {
		return nil
	}
	v := newDescribeView(c, describeSubject{kind: describeRecord, id: r.id, group: group})
	v.overGroup = true
	return c.open(v)
}
