package tui

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// record is a registration record as the table keeps it: only the columns,
// with repeated strings shared, so a million of them stay small.
type record struct {
	id, device, hub string
	status          dps.RegistrationStatus
	sub             dps.Substatus
	updated         time.Time
	created         time.Time
	errMsg          string // "code message" of a failed registration
}

// toRecords converts a page, sharing equal strings within it.
func toRecords(states []dps.DeviceRegistrationState) []record {
	out := make([]record, len(states))
	hubs := map[string]string{}
	for i, s := range states {
		h, ok := hubs[s.AssignedHub]
		if !ok {
			h = s.AssignedHub
			hubs[h] = h
		}
		dev := s.DeviceID
		if dev == s.RegistrationID {
			dev = s.RegistrationID
		}
		out[i] = record{id: s.RegistrationID, device: dev, hub: h, status: canonStatus(s.Status), sub: canonSubstatus(s.Substatus), updated: s.LastUpdatedDateTimeUTC,
			created: s.CreatedDateTimeUTC, errMsg: registrationError(s)}
	}
	return out
}

func canonStatus(s dps.RegistrationStatus) dps.RegistrationStatus {
	for _, c := range []dps.RegistrationStatus{dps.StatusAssigned, dps.StatusAssigning, dps.StatusFailed, dps.StatusDisabled, dps.StatusUnassigned} {
		if s == c {
			return c
		}
	}
	return s
}

func canonSubstatus(s dps.Substatus) dps.Substatus {
	for _, c := range []dps.Substatus{dps.SubstatusInitialAssignment, dps.SubstatusDeviceDataMigrated, dps.SubstatusDeviceDataReset, dps.SubstatusReprovisionedToInitialAssignment} {
		if s == c {
			return c
		}
	}
	return s
}

// recordColumns: a wide terminal shows the created time and the error
// instead of ever wider IDs.
var recordColumns = []table.Column{{Title: "REGISTRATION ID", Weight: 2, MaxWidth: 64}, {Title: "DEVICE ID", Weight: 1, MaxWidth: 48},
	{Title: "ASSIGNED HUB", Weight: 1, MaxWidth: 48}, {Title: "STATUS", Width: 10, Status: true},
	{Title: "SUBSTATUS", Width: 18, MinTable: 100}, {Title: "UPDATED (UTC)", Width: 19, MinTable: 140},
	{Title: "CREATED (UTC)", Width: 19, MinTable: 170}, {Title: "ERROR", Weight: 2, MinTable: 220}}

func recordKey(r record) string { return r.id }

func recordCells(r record) []string {
	return []string{r.id, r.device, r.hub, string(r.status), string(r.sub), stampCell(r.updated), stampCell(r.created), r.errMsg}
}

// recordSortKey is what column col of r sorts by: the cell itself, made
// alone (sorting a million records by ID makes no other cell), or for a
// time a key that sorts as its cell does without formatting it.
func recordSortKey(r record, col int) string {
	switch col {
	case 5:
		return timeKey(r.updated)
	case 6:
		return timeKey(r.created)
	}
	return recordCell(r, col)
}

// timeKey sorts as stampCell's text does: by time, "—" (none) last.
func timeKey(t time.Time) string {
	if t.IsZero() {
		return "\xff"
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.Unix())^1<<63)
	return string(b[:])
}

// recordCell is recordCells(r)[col], made alone.
func recordCell(r record, col int) string {
	switch col {
	case 0:
		return r.id
	case 1:
		return r.device
	case 2:
		return r.hub
	case 3:
		return string(r.status)
	case 4:
		return string(r.sub)
	case 5:
		return stampCell(r.updated)
	case 6:
		return stampCell(r.created)
	}
	return r.errMsg
}

// registrationError is a failed registration's error code and message.
func registrationError(s dps.DeviceRegistrationState) string {
	if s.ErrorCode == 0 && s.ErrorMessage == "" {
		return ""
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", s.ErrorCode, s.ErrorMessage))
}

func recordMatch(r record, q string) bool {
	return table.ContainsFold(r.id, q) || (r.device != r.id && table.ContainsFold(r.device, q)) || table.ContainsFold(r.hub, q) || table.ContainsFold(string(r.status), q)
}

// newRecordTable is the registration-record table of a group.
func newRecordTable(c *Common, owner int) *table.Table[record] {
	t := newTable(c, owner, recordColumns, recordKey, recordCells, recordMatch)
	t.SetSortCell(recordSortKey)
	return t
}

// groupView shows one enrollment group and its registration records.
type groupView struct {
	c        *Common
	vid      int
	groupID  string
	group    *dps.EnrollmentGroup
	att      *dps.AttestationMechanism
	revealed bool
	width    int // the size SetSize was given, kept for a reveal's re-layout
	height   int
	err      string

	table    *table.Table[record]
	gen      int
	token    string
	loading  bool
	opened   time.Time
	firstAt  time.Duration // time from opening to the first page on screen
	confirm  *confirm.Dialog
	deleting *deleteProgress
	records  recordSource       // what deletes records: the target's service
	stop     context.CancelFunc // stops the running deletion
	counting bool
	// stale is set when another view changed these records while a reload
	// would have dropped marks or raced a deletion; r (or the deletion's
	// end) reloads.
	stale bool
}

type groupLoadedMsg struct {
	gen   int
	group dps.EnrollmentGroup
	att   dps.AttestationMechanism
	err   error
}

type recordsPageMsg struct {
	gen     int
	records []record
	token   string
	err     error
}

type markAllCountMsg struct {
	gen int
	n   int
	err error
}

func newGroupView(c *Common, groupID string) *groupView {
	v := &groupView{c: c, vid: c.newID(), groupID: groupID, records: c.Target.Service}
	v.table = newRecordTable(c, v.vid)
	return v
}

func (v *groupView) id() int       { return v.vid }
func (v *groupView) Title() string { return "Group " + v.groupID }
func (v *groupView) Editing() bool { return v.table.Filtering() || v.confirm != nil }
func (v *groupView) Busy() bool    { return v.loading || v.counting || v.deleting != nil }
func (v *groupView) Status() string {
	s := loadedCount(v.table.Loaded(), v.table.More(), "record", "records")
	if v.stale {
		s += " (changed since: r reloads)"
	}
	return s
}

// settingsHeight is the lines the settings block takes above the table:
// five, and more while revealed keys wider than the screen wrap.
func (v *groupView) settingsHeight() int {
	return max(5, strings.Count(v.settings(), "\n")+1)
}

func (v *groupView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.table.SetSize(w, h-v.settingsHeight())
}

func (v *groupView) Hints() []*Binding {
	k := v.c.Keys
	switch {
	case v.deleting != nil:
		return []*Binding{k.Stop}
	case v.confirm != nil:
		return nil // the dialog lists its keys
	case v.table.Filtering():
		return filterHints(k)
	}
	return []*Binding{k.Open, k.Describe, k.Mark, k.MarkAll, k.MarkEvery, k.Delete, k.Filter, k.Reveal, k.Copy, k.Derive, k.Simulate, k.Fleet, k.Edit, k.Refresh}
}

func (v *groupView) Init() tea.Cmd {
	v.opened = v.c.Now()
	return v.refresh()
}

func (v *groupView) refresh() tea.Cmd {
	v.gen++
	v.stale = false
	v.table.Reset()
	v.token = ""
	return tea.Batch(v.loadGroup(), v.fetch())
}

// loadGroup reads the group's settings and keys (not its records).
func (v *groupView) loadGroup() tea.Cmd {
	gen, id, svc, ctx := v.gen, v.groupID, v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		g, err := svc.GetEnrollmentGroup(ctx, id)
		if err != nil {
			return groupLoadedMsg{gen: gen, err: err}
		}
		var att dps.AttestationMechanism
		if g.Attestation.Type == dps.AttestationSymmetricKey {
			att, err = svc.GetEnrollmentGroupAttestation(ctx, id)
		}
		return groupLoadedMsg{gen: gen, group: g, att: att, err: err}
	})
}

func (v *groupView) fetch() tea.Cmd {
	v.loading = true
	gen, token, id, svc, ctx := v.gen, v.token, v.groupID, v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		pager := svc.NewRegistrationStatePager(id, &dps.PagerOptions{PageSize: recordPageSize, ContinuationToken: token})
		page, err := pager.NextPage(ctx)
		return recordsPageMsg{gen: gen, records: toRecords(page.Items), token: page.ContinuationToken, err: err}
	})
}

func (v *groupView) more() tea.Cmd {
	if !v.loading && v.table.WantsMore() {
		return v.fetch()
	}
	return nil
}

// Escape clears the filter before the view closes. A running deletion keeps
// the view open: leaving would hide it from the quit guard and drop its end.
func (v *groupView) Escape() bool {
	return v.table.StopLoading() || v.table.ClearFilter() || v.deleting != nil
}

// RunningJob names the deletion in flight, if any.
func (v *groupView) RunningJob() string {
	if v.deleting != nil {
		return "a deletion of registration records"
	}
	return ""
}

func (v *groupView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case groupLoadedMsg:
		if msg.gen != v.gen {
			return nil
		}
		if msg.err != nil {
			v.err = dps.ErrorMessage(msg.err)
			return nil
		}
		v.group, v.att, v.err = &msg.group, &msg.att, ""
		return nil
	case recordsPageMsg:
		if msg.gen != v.gen {
			return nil
		}
		v.loading = false
		if msg.err != nil {
			return flashErr(fmt.Errorf("listing records of %s: %s", v.groupID, dps.ErrorMessage(msg.err)))
		}
		var logFirst tea.Cmd
		if v.firstAt == 0 {
			v.firstAt = v.c.Now().Sub(v.opened)
			logger, id, elapsed := v.c.Logger, v.groupID, v.firstAt
			logFirst = func() tea.Msg { logger.Debug("first page of records", "group", id, "elapsed", elapsed); return nil }
		}
		v.token = msg.token
		v.table.Append(msg.records, msg.token != "")
		return tea.Batch(logFirst, v.more())
	case markAllCountMsg:
		v.counting = false
		if msg.gen != v.gen {
			return nil
		}
		if msg.err != nil {
			return flashErr(fmt.Errorf("counting records: %s", dps.ErrorMessage(msg.err)))
		}
		v.table.SetAllCount(msg.n)
		return flash(fmt.Sprintf("all %s of %s marked, across every page", plural(v.table.MarkedCount(), "record", "records"), v.groupID))
	case deleteProgress:
		v.deleting = &msg
		if !msg.done {
			return listenDelete(v.vid, msg.ch)
		}
		v.deleting, v.stop = nil, nil
		changed := recordsChanged(v.vid, v.groupID) // the home screen's count of this group
		// Stopped or not, after a mark-all the count of what is left is unknown.
		if all, _ := v.table.AllMarked(); all || v.stale {
			if all {
				v.table.ToggleMarkAll()
			}
			return tea.Batch(v.deleteReport(msg), v.refresh(), changed)
		}
		v.table.Remove(msg.gone)
		return tea.Batch(v.deleteReport(msg), v.more(), changed)
	case groupsChangedMsg:
		return v.loadGroup() // edited: the settings, not the records
	case recordsChangedMsg:
		if msg.from == v.vid || (msg.group != v.groupID && msg.group != "") {
			return nil
		}
		if v.deleting != nil || v.table.MarkedCount() != 0 {
			v.stale = true // a reload now would drop the marks
			return nil
		}
		return v.refresh() // a simulated registration added or updated a record
	case tea.KeyPressMsg:
		return v.key(msg)
	}
	cmd, _ := v.table.Update(msg)
	return cmd
}

// deleteReport says how a deletion ended; with failures it opens a report
// listing every one of them.
func (v *groupView) deleteReport(p deleteProgress) tea.Cmd {
	summary := fmt.Sprintf("deleted %s of %s records of %s", theme.Count(p.deleted), theme.Count(p.total), v.groupID)
	if p.stopped {
		summary = "stopped: " + summary + "; the rest are kept"
	}
	if p.failed == 0 {
		if p.stopped {
			return flash(summary)
		}
		return flash("deleted " + plural(p.deleted, "registration record", "registration records"))
	}
	summary += fmt.Sprintf("; %s failed", theme.Count(p.failed))
	report := newReportView(v.c, "Deletion of records", []string{v.c.Styles.Title.Render(summary),
		v.c.Styles.Muted.Render(rateLine(p.rate, 0, p.elapsed, false) + fmt.Sprintf("  %s attempts retried", theme.Count(p.retries)))}, p.failures)
	return tea.Batch(flashErr(errors.New(summary)), v.c.open(report))
}

func (v *groupView) key(msg tea.KeyPressMsg) tea.Cmd {
	if v.confirm != nil {
		c := v.confirm
		v.confirm = nil
		return answer(c, msg)
	}
	k := v.c.Keys
	if v.deleting != nil {
		if k.Stop.Matches(msg) && v.stop != nil {
			v.stop()
			return flash("stopping the deletion…")
		}
		return nil
	}
	lookup := findOnEnter(v.table, msg)
	if cmd, handled := v.table.Update(msg); handled {
		return tea.Batch(cmd, v.more(), lookup)
	}
	switch {
	case k.Refresh.Matches(msg):
		return v.refresh()
	case k.Describe.Matches(msg):
		return describeRecordOf(v.c, v.table, v.groupID)
	case k.Mark.Matches(msg):
		v.table.ToggleMark()
		v.table.MoveBy(1)
		return v.more()
	case k.MarkAll.Matches(msg):
		return v.markShown()
	case k.MarkEvery.Matches(msg):
		if !v.table.ToggleMarkAll() {
			return flashInfo("marks cleared")
		}
		v.counting = true
		gen, id, svc, ctx := v.gen, v.groupID, v.c.Target.Service, v.c.Ctx
		return tea.Batch(flashInfo("marking every record of "+id+"; counting…"), do(v.vid, func() tea.Msg {
			n, _, err := countRecords(ctx, svc, id, 0)
			return markAllCountMsg{gen: gen, n: n, err: err}
		}))
	case k.Delete.Matches(msg):
		return v.askDelete()
	case k.Reveal.Matches(msg):
		v.revealed = !v.revealed
		v.SetSize(v.width, v.height) // a revealed key may wrap
	case k.Copy.Matches(msg):
		if v.att == nil || v.att.SymmetricKey == nil {
			return flashWarn("this group has no symmetric keys to copy")
		}
		return tea.Batch(tea.SetClipboard(v.att.SymmetricKey.PrimaryKey.Reveal()), flash("primary key copied to the clipboard (OSC 52)"))
	case k.Open.Matches(msg):
		if r, ok := v.table.Selected(); ok && r.hub == "" { // no hub device: why is what it shows
			return describeRecordOf(v.c, v.table, v.groupID)
		}
		return openHubDevice(v.c, v.table)
	case k.Derive.Matches(msg):
		r, _ := v.table.Selected()
		return v.c.open(newDeriveView(v.c, v.groupID, r.id))
	case k.Edit.Matches(msg):
		return v.c.open(newGroupEditView(v.c, v.groupID))
	case k.Simulate.Matches(msg):
		// Never the selected record's ID: re-registering a real device is no demo.
		return v.c.open(newSimulateView(v.c, v.groupID, ""))
	case k.Fleet.Matches(msg):
		return v.c.open(newFleetView(v.c, v.groupID))
	}
	return nil
}

// markShown marks (or unmarks) the records on screen: the ones the filter
// shows, or every loaded one. Records not loaded or hidden stay as they are;
// A is the action that reaches them.
func (v *groupView) markShown() tea.Cmd {
	if all, _ := v.table.AllMarked(); all {
		v.table.ToggleShown()
		return flashInfo("marks cleared")
	}
	n, marked := v.table.ToggleShown()
	if n == 0 {
		return flashWarn("no records shown: nothing to mark")
	}
	what := "marked"
	if !marked {
		what = "unmarked"
	}
	text := what + " the " + plural(n, "record shown", "records shown")
	if v.table.Query() != "" {
		text += fmt.Sprintf(" (of %s loaded; the filter hides the rest)", theme.Count(v.table.Loaded()))
	} else if v.table.More() {
		text += " (the loaded pages)"
	}
	if marked && (v.table.Query() != "" || v.table.More()) {
		text += "; A marks every record of the group"
	}
	return flash(text)
}

func (v *groupView) askDelete() tea.Cmd {
	n := v.table.MarkedCount()
	switch {
	case n < 0:
		return flashWarn("still counting the records; try again in a moment")
	case n == 0:
		return flashWarn("nothing marked: space marks a record, ctrl+a the records shown, A every record of the group")
	}
	svc, id := v.records, v.groupID
	text := fmt.Sprintf("Delete %s of %s?", plural(n, "marked registration record", "marked registration records"), id)
	var run func(context.Context) tea.Cmd
	if all, skip := v.table.AllMarked(); all {
		text = fmt.Sprintf("Delete ALL %s of %s (every page, loaded or not)?", plural(n, "registration record", "registration records"), id)
		if len(skip) > 0 {
			text += "\n" + plural(len(skip), "unmarked record is kept.", "unmarked records are kept.")
		}
		if q := v.table.Query(); q != "" {
			text += fmt.Sprintf("\nThe filter /%s does not limit this: it shows %s of the %s loaded records.", q, theme.Count(v.table.Len()), theme.Count(v.table.Loaded()))
		}
		run = func(ctx context.Context) tea.Cmd { return startDeleteRecords(ctx, v.vid, svc, id, nil, skip, n) }
	} else {
		ids := v.table.Marked()
		if h := v.table.HiddenMarks(); h > 0 {
			text += "\n" + plural(h, "of them is hidden by the filter.", "of them are hidden by the filter.")
		}
		run = func(ctx context.Context) tea.Cmd { return startDeleteRecords(ctx, v.vid, svc, id, ids, nil, n) }
	}
	text += "\nThe devices stay registered in their IoT hub; they register again on their next start."
	v.confirm = &confirm.Dialog{Text: text, Choices: []confirm.Choice{{Key: "y", Label: "delete them", Run: func() tea.Cmd {
		v.deleting = &deleteProgress{total: n}
		var ctx context.Context
		ctx, v.stop = context.WithCancel(v.c.Ctx)
		return run(ctx)
	}}}}
	return nil
}

func (v *groupView) settings() string {
	st := v.c.Styles
	if v.err != "" {
		return errorText(v.c, v.err)
	}
	if v.group == nil {
		return st.Muted.Render("loading " + v.groupID + "…")
	}
	g := v.group
	kv := func(k, val string) string { return st.Label.Render(k+" ") + st.Value.Render(val) }
	hubs := strings.Join(g.IoTHubs, ", ")
	if hubs == "" {
		hubs = "all linked hubs"
	}
	reprov := "—"
	if p := g.ReprovisionPolicy; p != nil {
		reprov = fmt.Sprintf("update hub %v, migrate data %v", p.UpdateHubAssignment, p.MigrateDeviceData)
	}
	primary, secondary := "—", "—"
	if v.att != nil && v.att.SymmetricKey != nil {
		primary, secondary = v.att.SymmetricKey.PrimaryKey.String(), v.att.SymmetricKey.SecondaryKey.String()
		if v.revealed {
			primary, secondary = v.att.SymmetricKey.PrimaryKey.Reveal(), v.att.SymmetricKey.SecondaryKey.Reveal()
		}
	}
	lines := []string{
		kv("Attestation", string(g.Attestation.Type)) + "   " + kv("Status", string(g.ProvisioningStatus)) + "   " + kv("Allocation", string(g.AllocationPolicy)),
		kv("Hubs", hubs) + "   " + kv("Reprovision", reprov),
		kv("Primary key", primary) + "  " + st.Muted.Render("("+v.c.Keys.Reveal.Help().Key+" reveals, "+v.c.Keys.Copy.Help().Key+" copies)"),
		kv("Secondary key", secondary),
		kv("Created", stamp(g.CreatedDateTimeUTC)) + "   " + kv("Updated", stamp(g.LastUpdatedDateTimeUTC)),
	}
	for i := range lines {
		if v.revealed && (i == 2 || i == 3) {
			// A key is never cut: wrapped, it still reads (and copies) whole.
			lines[i] = ansi.Hardwrap(lines[i], v.c.Width, true)
			continue
		}
		lines[i] = theme.Fit(lines[i], v.c.Width)
	}
	return strings.Join(lines, "\n")
}

func (v *groupView) View() string {
	if v.confirm != nil {
		return v.confirm.View(v.c.Styles, v.c.Width)
	}
	body := v.table.View()
	if p := v.deleting; p != nil {
		lines := []string{progressLine(v.c, *p, "deleting records"),
			v.c.Styles.Muted.Render(rateLine(p.rate, p.eta, p.elapsed, true) + "  (" + v.c.Keys.Stop.Help().Key + " stops)")}
		if s := silenceLine(v.c, p.silent, p.retries, p.failed); s != "" {
			lines = append(lines, s)
		}
		body = strings.Join(lines, "\n") + "\n" + clip(body, v.c.Width, max(v.c.Height-v.settingsHeight()-len(lines), 1))
	}
	// The table keeps its place (the bottom of the body) while the settings
	// load: it does not jump, and a click lands on the row drawn there.
	head := v.settings()
	if n := strings.Count(head, "\n") + 1; n < v.settingsHeight() {
		head += strings.Repeat("\n", v.settingsHeight()-n)
	}
	return head + "\n" + body
}
