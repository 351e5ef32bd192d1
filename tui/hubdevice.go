package tui

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/tui/components/form"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
)

// hubDevicePoll is how often the hub device view re-reads the device and
// its twin while it is open, so connection state and reported properties
// stay live.
var hubDevicePoll = 3 * time.Second

// hubDeviceView shows a provisioned device as its hub knows it: identity
// status, connection, last activity and the twin. It calls direct methods
// and patches desired properties (both writes: off under --readonly).
type hubDeviceView struct {
	c                 *Common
	vid               int
	deviceID, hubHost string
	reg               *hub.RegistryClient
	dev               *hub.Device
	twin              *hub.Twin
	err               string
	gen               int // of the read in flight; a stale read or tick is dropped
	loading           bool
	top               int
	edit              *hubEdit
}

// hubEdit is the open form: a direct method call or a desired patch.
type hubEdit struct {
	method  bool // else a desired-properties patch
	form    *form.Form
	etag    string // the twin version the patch is written over
	working bool
	err     string
	answer  string // the device's answer to the last call
}

type hubDeviceReadMsg struct {
	gen  int
	dev  hub.Device
	twin hub.Twin
	err  error
}

type hubDevicePollMsg struct{ gen int }

type hubMethodDoneMsg struct {
	edit *hubEdit
	res  hub.MethodResult
	err  error
}

type hubTwinWrittenMsg struct {
	edit     *hubEdit
	twin     hub.Twin
	conflict bool // 412: twin is the new version, the patch was not written
	err      error
}

func newHubDeviceView(c *Common, deviceID, hubHost string) *hubDeviceView {
	v := &hubDeviceView{c: c, vid: c.newID(), deviceID: deviceID, hubHost: hubHost}
	reg, err := c.Target.Registry(hubHost)
	if err != nil {
		v.err = err.Error()
	}
	v.reg = reg
	return v
}

func (v *hubDeviceView) id() int       { return v.vid }
func (v *hubDeviceView) Title() string { return "Hub device " + v.deviceID }
func (v *hubDeviceView) Editing() bool { return v.edit != nil }
func (v *hubDeviceView) Busy() bool {
	return (v.loading && v.twin == nil) || (v.edit != nil && v.edit.working)
}
func (v *hubDeviceView) SetSize(w, h int) {}
func (v *hubDeviceView) Status() string {
	if v.dev == nil {
		return ""
	}
	return strings.ToLower(v.dev.ConnectionState)
}

func (v *hubDeviceView) Hints() []*Binding {
	k := v.c.Keys
	if v.edit != nil {
		return []*Binding{k.NextField, k.Submit, k.Back}
	}
	return []*Binding{k.Method, k.Desired, k.Copy, k.Describe, k.Refresh}
}

func (v *hubDeviceView) Init() tea.Cmd { return v.read() }

// read fetches the identity and the twin; each read outdates the ones
// (and the ticks) before it.
func (v *hubDeviceView) read() tea.Cmd {
	if v.reg == nil {
		return nil
	}
	v.gen++
	v.loading = true
	gen, reg, id, ctx := v.gen, v.reg, v.deviceID, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		d, err := reg.GetDevice(ctx, id)
		if err != nil {
			return hubDeviceReadMsg{gen: gen, err: err}
		}
		tw, err := reg.GetTwin(ctx, id)
		return hubDeviceReadMsg{gen: gen, dev: d, twin: tw, err: err}
	})
}

// tick asks for the next read of this generation.
func (v *hubDeviceView) tick() tea.Cmd {
	gen, to := v.gen, v.vid
	return tea.Tick(hubDevicePoll, func(time.Time) tea.Msg { return routed{to: to, msg: hubDevicePollMsg{gen}} })
}

func (v *hubDeviceView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case hubDeviceReadMsg:
		if msg.gen != v.gen {
			return nil
		}
		v.loading = false
		if msg.err != nil {
			v.err = v.readError(msg.err)
			if hub.IsNotFound(msg.err) { // deleted meanwhile: what was shown is gone
				v.dev, v.twin = nil, nil
			}
		} else {
			v.dev, v.twin, v.err = &msg.dev, &msg.twin, ""
		}
		return v.tick()
	case hubDevicePollMsg:
		if msg.gen != v.gen {
			return nil
		}
		return v.read()
	case hubMethodDoneMsg:
		if msg.edit != v.edit {
			return nil // the form was closed
		}
		v.edit.working = false
		if msg.err != nil {
			v.edit.err, v.edit.answer = v.methodError(msg.edit.form.Value(0), msg.err), ""
			return nil
		}
		v.edit.err, v.edit.answer = "", methodAnswer(msg.res)
		return nil
	case hubTwinWrittenMsg:
		return v.written(msg)
	case tea.PasteMsg:
		if v.edit != nil {
			cmd, _ := v.edit.form.Paste(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		return v.key(msg)
	}
	return nil
}

// written shows the twin a patch produced, or on a 412 the twin as it is
// now, with the patch kept in the field to check and send again.
func (v *hubDeviceView) written(msg hubTwinWrittenMsg) tea.Cmd {
	open := msg.edit == v.edit
	if open {
		v.edit.working = false
	}
	if msg.err != nil {
		if !open {
			return flashErr(errors.New(v.twinError(msg.err)))
		}
		v.edit.err = v.twinError(msg.err)
		return nil
	}
	v.gen++ // a read in flight may predate the write
	v.twin = &msg.twin
	if msg.conflict {
		if open {
			v.edit.etag = msg.twin.ETag
			v.edit.err = "the twin changed elsewhere since it was read: the new version is shown below, and your patch was not written over it. Check it; enter writes the patch over this version."
		}
		return v.tick()
	}
	if open {
		v.edit = nil
	}
	return tea.Batch(v.tick(), flash(fmt.Sprintf("desired properties of %s updated (twin version %d)", v.deviceID, msg.twin.Version)))
}

func (v *hubDeviceView) key(msg tea.KeyPressMsg) tea.Cmd {
	if v.edit != nil {
		return v.editKey(msg)
	}
	k := v.c.Keys
	lines, h := v.bodyLines(), v.bodyHeight(v.headLines())
	page := max(h-1, 1)
	switch {
	case k.Refresh.Matches(msg):
		return v.read()
	case k.Copy.Matches(msg):
		if v.twin == nil {
			return flashWarn("the twin is not read yet: nothing to copy")
		}
		b, _ := json.MarshalIndent(v.twin, "", "  ")
		return tea.Batch(tea.SetClipboard(string(b)), flash("twin of "+v.deviceID+" copied to the clipboard (OSC 52)"))
	case k.Method.Matches(msg):
		return v.openEdit(true)
	case k.Desired.Matches(msg):
		return v.openEdit(false)
	case k.Describe.Matches(msg):
		return v.c.open(newDescribeView(v.c, describeSubject{kind: describeHubDevice, id: v.deviceID, hub: v.hubHost}))
	default:
		k.scrollKey(msg, &v.top, page, len(lines))
	}
	v.top = max(min(v.top, len(lines)-h), 0)
	return nil
}

func (v *hubDeviceView) openEdit(method bool) tea.Cmd {
	if v.twin == nil {
		return flashWarn("the device is not read yet; wait for it or press r")
	}
	e := &hubEdit{method: method, etag: v.twin.ETag}
	if method {
		e.form = newForm(v.c, "Method", "Payload (JSON)", "Timeout (s)")
		e.form.Inputs[0].Placeholder = "e.g. reboot"
		e.form.Inputs[1].Placeholder = `e.g. {"delay":5}; empty sends null`
		e.form.Set(2, strconv.Itoa(int(hub.DefaultMethodResponseTimeout/time.Second)))
	} else {
		e.form = newForm(v.c, "Desired patch")
		e.form.Inputs[0].Placeholder = `e.g. {"interval":30,"old":null}; a null removes that property`
	}
	e.form.SetWidth(min(v.c.Width-20, 90))
	v.edit = e
	return e.form.FocusOn(0)
}

func (v *hubDeviceView) editKey(msg tea.KeyPressMsg) tea.Cmd {
	e := v.edit
	switch msg.String() {
	case "esc":
		v.edit = nil
		return nil
	case "enter":
		if e.form.Focus() < len(e.form.Inputs)-1 {
			return e.form.FocusOn(e.form.Focus() + 1)
		}
		if e.working {
			return nil // a second enter would call (or write) again
		}
		if e.method {
			return v.invoke()
		}
		return v.patch()
	}
	cmd, _ := e.form.Update(msg)
	return cmd
}

// invoke calls the method the form names; input errors stay in the form.
func (v *hubDeviceView) invoke() tea.Cmd {
	e := v.edit
	name := e.form.Value(0)
	var payload json.RawMessage
	if p := e.form.Value(1); p != "" {
		payload = json.RawMessage(p)
	}
	secs, err := strconv.Atoi(e.form.Value(2))
	if err != nil {
		e.err = fmt.Sprintf("Timeout: %q is not a whole number of seconds; give 5 to 300", e.form.Value(2))
		return nil
	}
	opts := hub.MethodOptions{ResponseTimeout: time.Duration(secs) * time.Second}
	if err := hub.ValidateMethodCall(name, payload, &opts); err != nil {
		e.err = err.Error()
		return nil
	}
	e.working, e.err, e.answer = true, "", ""
	reg, id, ctx := v.reg, v.deviceID, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		res, err := reg.InvokeMethod(ctx, id, name, payload, &opts)
		return hubMethodDoneMsg{edit: e, res: res, err: err}
	})
}

// patch merges the form's desired properties into the twin, over the
// version the form was opened on (or last shown after a 412).
func (v *hubDeviceView) patch() tea.Cmd {
	e := v.edit
	desired, err := dps.ParseTwinCollection(e.form.Value(0))
	if err != nil {
		e.err = `Desired patch: not a JSON object; give one such as {"interval":30} (a null removes that property)`
		return nil
	}
	e.working, e.err = true, ""
	reg, id, ctx := v.reg, v.deviceID, v.c.Ctx
	etag := azcore.ETag(e.etag)
	return do(v.vid, func() tea.Msg {
		tw, err := reg.UpdateTwin(ctx, id, hub.TwinPatch{Properties: &hub.TwinPatchProperties{Desired: desired}}, &hub.TwinWriteOptions{IfMatch: &etag})
		if hub.IsPreconditionFailed(err) {
			tw, err = reg.GetTwin(ctx, id)
			return hubTwinWrittenMsg{edit: e, twin: tw, conflict: err == nil, err: err}
		}
		return hubTwinWrittenMsg{edit: e, twin: tw, err: err}
	})
}

func (v *hubDeviceView) readError(err error) string { return hubReadError(v.deviceID, v.hubHost, err) }

func hubReadError(deviceID, hubHost string, err error) string {
	if hub.IsNotFound(err) {
		return fmt.Sprintf("device %q is not in hub %s, though its registration record names that hub: its identity was deleted, or the record is stale (%s)", deviceID, hubHost, hub.ErrorMessage(err))
	}
	return fmt.Sprintf("reading device %q in %s: %s", deviceID, hubHost, hub.ErrorMessage(err))
}

// hubDeviceSummary reads a device and its twin for one paragraph: what
// the tutorial's confirm step shows, as the docs check the device on its
// hub. Without the hub's connection string it says so and is no error.
// It does I/O: call it in a Cmd.
func hubDeviceSummary(ctx context.Context, t *Target, hubHost, deviceID string) (string, error) {
	reg, err := t.Registry(hubHost)
	if err != nil {
		return "the device on its hub is not shown: " + err.Error(), nil
	}
	d, err := reg.GetDevice(ctx, deviceID)
	if err == nil {
		var tw hub.Twin
		if tw, err = reg.GetTwin(ctx, deviceID); err == nil {
			desired, reported := twinProperties(tw)
			return fmt.Sprintf("on the hub: %s, %s, last activity %s; twin version %d: tags %s, desired %s, reported %s",
				d.Status, strings.ToLower(d.ConnectionState), stamp(d.LastActivityTime), tw.Version,
				tw.Tags.Compact(), desired.Compact(), reported.Compact()), nil
		}
	}
	return "", errors.New(hubReadError(deviceID, hubHost, err))
}

// methodError says in plain words why a call got no answer.
func (v *hubDeviceView) methodError(name string, err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusNotFound && (re.ErrorCode == "DeviceNotOnline" || strings.Contains(err.Error(), "404103")):
			return fmt.Sprintf("device %s is not online (not connected to %s): a direct method reaches only a connected device. Connect it, then enter calls again.", v.deviceID, v.hubHost)
		case re.StatusCode == http.StatusGatewayTimeout:
			return fmt.Sprintf("device %s did not answer method %q in time (504): it is connected but sent no answer within the timeout. A longer timeout may help.", v.deviceID, name)
		case re.StatusCode == http.StatusNotFound:
			return fmt.Sprintf("device %q is not in hub %s (%s)", v.deviceID, v.hubHost, hub.ErrorMessage(err))
		}
	}
	return fmt.Sprintf("method %q on %s: %s", name, v.deviceID, hub.ErrorMessage(err))
}

func (v *hubDeviceView) twinError(err error) string {
	if hub.IsNotFound(err) {
		return fmt.Sprintf("device %q is not in hub %s: its twin is gone (%s)", v.deviceID, v.hubHost, hub.ErrorMessage(err))
	}
	return fmt.Sprintf("updating the twin of %s: %s", v.deviceID, hub.ErrorMessage(err))
}

// methodAnswer is the device's status and payload on one line.
func methodAnswer(res hub.MethodResult) string {
	var b bytes.Buffer
	if json.Compact(&b, res.Payload) != nil {
		b.Reset()
		b.Write(res.Payload)
	}
	s := fmt.Sprintf("device answered: status %d, payload %s", res.Status, cmp.Or(b.String(), "null"))
	if res.Status >= 300 {
		s += " (a status of 300 or more is the device reporting a failure)"
	}
	return s
}

// twinProperties are tw's desired and reported properties, nil when it has none.
func twinProperties(tw hub.Twin) (desired, reported dps.TwinCollection) {
	if p := tw.Properties; p != nil {
		return p.Desired, p.Reported
	}
	return nil, nil
}

// bodyLines are the twin's tags and properties as indented JSON, without
// the $metadata that would bury them.
func (v *hubDeviceView) bodyLines() []string {
	if v.twin == nil {
		return nil
	}
	desired, reported := twinProperties(*v.twin)
	var lines []string
	for _, part := range []struct {
		title string
		c     dps.TwinCollection
	}{{"Tags", v.twin.Tags}, {"Desired properties", desired}, {"Reported properties", reported}} {
		c := maps.Clone(part.c)
		delete(c, "$metadata")
		if c == nil {
			c = dps.TwinCollection{}
		}
		b, _ := json.MarshalIndent(c, "", "  ")
		lines = append(lines, v.c.Styles.Label.Render(part.title))
		lines = append(lines, strings.Split(v.c.Styles.Code.Render(string(b)), "\n")...)
	}
	return lines
}

// headLines are the identity and the open form, above the twin.
func (v *hubDeviceView) headLines() []string {
	st := v.c.Styles
	lines := []string{st.Title.Render("Hub device "+v.deviceID) + st.Muted.Render(" in "+v.hubHost)}
	if v.err != "" {
		lines = append(lines, errorText(v.c, v.err))
	}
	if v.dev != nil {
		d, tw := v.dev, v.twin
		conn := d.ConnectionState
		if !d.ConnectionStateUpdatedTime.IsZero() {
			conn += " since " + stamp(d.ConnectionStateUpdatedTime)
		}
		lines = append(lines,
			st.Label.Render("Status ")+d.Status+st.Label.Render("   Connection ")+conn,
			st.Label.Render("Last activity ")+stamp(d.LastActivityTime)+st.Label.Render(fmt.Sprintf("   Twin version %d  ETag %s", tw.Version, tw.ETag)))
	} else if v.err == "" {
		lines = append(lines, st.Muted.Render("reading the device and its twin…"))
	}
	if e := v.edit; e != nil {
		title := "Desired properties patch (merged into the twin; written only over the version read)"
		if e.method {
			title = "Direct method (the device must be connected)"
		}
		lines = append(lines, "", st.Title.Render(title))
		for i := range e.form.Inputs {
			lines = append(lines, e.form.Row(i, 15, ""))
		}
		switch {
		case e.working:
			lines = append(lines, st.Muted.Render("waiting for the hub…"))
		case e.err != "":
			lines = append(lines, errorText(v.c, e.err))
		case e.answer != "":
			lines = append(lines, st.OK.Render(e.answer))
		default:
			lines = append(lines, st.Muted.Render("enter on the last field sends; esc closes"))
		}
	}
	return append(lines, "")
}

// bodyHeight is the lines of twin that fit under head and above the note.
func (v *hubDeviceView) bodyHeight(head []string) int {
	return max(v.c.Height-lenLines(head)-1, 1)
}

func lenLines(lines []string) int { return len(strings.Split(strings.Join(lines, "\n"), "\n")) }

func (v *hubDeviceView) View() string {
	lines := v.bodyLines()
	head := v.headLines()
	h := v.bodyHeight(head)
	top := min(v.top, max(len(lines)-h, 0))
	shown := lines[top:min(top+h, len(lines))]
	note := fmt.Sprintf("live: re-read every %v; %s copies the twin, esc goes back", hubDevicePoll, v.c.Keys.Copy.Help().Key)
	if len(lines) > h {
		note = fmt.Sprintf("lines %d–%d of %d, ↑/↓ scroll; ", top+1, top+len(shown), len(lines)) + note
	}
	return strings.Join(append(head, append(shown, v.c.Styles.Muted.Render(note))...), "\n")
}

// openHubDevice opens the hub device of the selected registration record.
func openHubDevice(c *Common, t *table.Table[record]) tea.Cmd {
	r, ok := t.Selected()
	switch {
	case !ok:
		return nil
	case r.hub == "":
		return flashWarn(fmt.Sprintf("registration record %s is %s and names no hub: it has no hub device to show", r.id, cmp.Or(string(r.status), "without a status")))
	}
	return c.open(newHubDeviceView(c, cmp.Or(r.device, r.id), r.hub))
}
