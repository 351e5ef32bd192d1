package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/tui/components/confirm"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// groupPageSize is the page size of the groups listing.
const groupPageSize = 100

// countCap stops the lazy per-group record count; the delete dialog counts
// fully.
const countCap = 10 * recordPageSize

// recordCount is a group's lazily fetched registration-record count.
type recordCount struct {
	n       int
	more    bool // at least n
	err     error
	pending bool
}

func (r recordCount) String() string {
	switch {
	case r.pending:
		return "…"
	case r.err != nil:
		return "?"
	case r.more:
		return theme.Count(r.n) + "+"
	}
	return theme.Count(r.n)
}

// groupsView is the home screen: the enrollment groups.
type groupsView struct {
	c        *Common
	vid      int
	table    *table.Table[dps.EnrollmentGroup]
	counts   map[string]recordCount
	gen      int // listing generation: a refresh drops older pages
	delGen   int // the latest d: an older count arriving late is dropped
	token    string
	loading  bool
	working  string // an action in flight, for Busy
	confirm  *confirm.Dialog
	deleting *deleteProgress
	// pendingGroupDelete is the group to delete once its records are gone.
	pendingGroupDelete string
	err                string
}

type groupsPageMsg struct {
	gen   int
	items []dps.EnrollmentGroup
	token string
	err   error
}

type groupCountMsg struct {
	gen     int
	groupID string
	rc      recordCount
}

type groupChangedMsg struct {
	what    string
	err     error
	nothing bool // nothing to do: the flash says so as a warning
}

// deleteCountMsg carries the full record count for the delete dialog.
type deleteCountMsg struct {
	gen     int
	groupID string
	n       int
	err     error
}

func newGroupsView(c *Common) *groupsView {
	v := &groupsView{c: c, vid: c.newID(), counts: map[string]recordCount{}}
	v.table = newTable(c, v.vid, []table.Column{
		{Title: "ENROLLMENT GROUP", MaxWidth: 64}, {Title: "ATTESTATION", Width: 12, MinTable: 90}, {Title: "ALLOCATION", Width: 11}, {Title: "HUBS", MaxWidth: 80},
		{Title: "STATUS", Width: 8, Status: true}, {Title: "RECORDS", Width: 8},
		{Title: "CREATED (UTC)", Width: 19, MinTable: 160}, {Title: "UPDATED (UTC)", Width: 19, MinTable: 180},
	}, func(g dps.EnrollmentGroup) string { return g.EnrollmentGroupID },
		v.cells,
		func(g dps.EnrollmentGroup, q string) bool {
			return table.ContainsFold(g.EnrollmentGroupID, q) || table.ContainsFold(strings.Join(g.IoTHubs, " "), q) ||
				table.ContainsFold(string(g.Attestation.Type), q)
		})
	return v
}

func (v *groupsView) cells(g dps.EnrollmentGroup) []string {
	hubs := strings.Join(g.IoTHubs, ", ")
	if hubs == "" {
		hubs = g.IoTHubHostName
	}
	if hubs == "" { // DPS allocates among every hub linked to it
		hubs = "all linked hubs"
	}
	return []string{g.EnrollmentGroupID, string(g.Attestation.Type), string(g.AllocationPolicy), hubs,
		string(g.ProvisioningStatus), v.counts[g.EnrollmentGroupID].String(), stampCell(g.CreatedDateTimeUTC), stampCell(g.LastUpdatedDateTimeUTC)}
}

func (v *groupsView) id() int       { return v.vid }
func (v *groupsView) Title() string { return "Enrollment groups" }
func (v *groupsView) Editing() bool {
	return v.table.Filtering() || v.confirm != nil || v.askingDelete()
}

// askingDelete is true while d counts the records its dialog states: the
// keys are the dialog's already, so none reaches the list.
func (v *groupsView) askingDelete() bool { return v.working == "counting" }
func (v *groupsView) Busy() bool         { return v.loading || v.working != "" }
func (v *groupsView) Status() string {
	return loadedCount(v.table.Loaded(), v.table.More(), "group", "groups")
}
func (v *groupsView) SetSize(w, h int) { v.table.SetSize(w, h) }

func (v *groupsView) Hints() []*Binding {
	k := v.c.Keys
	switch {
	case v.confirm != nil:
		return nil // the dialog lists its keys
	case v.askingDelete():
		return []*Binding{k.Back}
	case v.table.Filtering():
		return filterHints(k)
	}
	return []*Binding{k.Open, k.Describe, k.Filter, k.New, k.Toggle, k.Delete, k.Derive, k.Simulate, k.Fleet, k.Edit, k.Refresh}
}

func (v *groupsView) Init() tea.Cmd { return v.refresh() }

func (v *groupsView) refresh() tea.Cmd {
	v.gen++
	v.table.Reset()
	v.counts = map[string]recordCount{}
	v.token = ""
	return v.fetch()
}

func (v *groupsView) fetch() tea.Cmd {
	if v.c.Target == nil || v.c.Target.Service == nil {
		return nil
	}
	v.loading = true
	gen, token, svc, ctx, journal, log := v.gen, v.token, v.c.Target.Service, v.c.Ctx, v.c.Target.Journal, v.c.Logger
	return do(v.vid, func() tea.Msg {
		pager := svc.NewEnrollmentGroupPager(&dps.PagerOptions{PageSize: groupPageSize, ContinuationToken: token})
		page, err := pager.NextPage(ctx)
		if err == nil && journal != nil {
			// The journal of groups seen lets the clean-up tell orphans later.
			ids := make([]string, len(page.Items))
			for i, g := range page.Items {
				ids[i] = g.EnrollmentGroupID
			}
			if jerr := journal.Seen(ids...); jerr != nil {
				log.Warn("recording seen groups", "error", jerr)
			}
		}
		return groupsPageMsg{gen: gen, items: page.Items, token: page.ContinuationToken, err: err}
	})
}

// countVisible starts counts for visible groups that have none.
func (v *groupsView) countVisible() tea.Cmd {
	var cmds []tea.Cmd
	start, end := v.table.Window()
	for i := start; i < end; i++ {
		g := v.table.At(i)
		id := g.EnrollmentGroupID
		if _, ok := v.counts[id]; ok {
			continue
		}
		v.counts[id] = recordCount{pending: true}
		gen, svc, ctx := v.gen, v.c.Target.Service, v.c.Ctx
		cmds = append(cmds, do(v.vid, func() tea.Msg {
			n, more, err := countRecords(ctx, svc, id, countCap)
			return groupCountMsg{gen: gen, groupID: id, rc: recordCount{n: n, more: more, err: err}}
		}))
	}
	return tea.Batch(cmds...)
}

// Escape clears the filter before the view closes.
func (v *groupsView) Escape() bool { return v.table.StopLoading() || v.table.ClearFilter() }

// RunningJob names the deletion in flight, if any.
func (v *groupsView) RunningJob() string {
	if v.deleting != nil {
		return "a deletion of registration records"
	}
	return ""
}

func (v *groupsView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case groupsPageMsg:
		if msg.gen != v.gen {
			return nil
		}
		v.loading = false
		if msg.err != nil {
			v.err = dps.ErrorMessage(msg.err)
			return flashErr(fmt.Errorf("listing enrollment groups: %s", v.err))
		}
		v.err = ""
		v.token = msg.token
		v.table.Append(msg.items, msg.token != "")
		return tea.Batch(v.countVisible(), v.more())
	case groupCountMsg:
		if msg.gen == v.gen {
			v.counts[msg.groupID] = msg.rc
		}
		return nil
	case deleteCountMsg:
		if msg.gen != v.delGen {
			return nil
		}
		v.working = ""
		if v.deleting != nil {
			return nil
		}
		return v.askDelete(msg)
	case groupChangedMsg:
		v.working = ""
		if msg.err != nil {
			return flashErr(fmt.Errorf("%s: %s", msg.what, dps.ErrorMessage(msg.err)))
		}
		return tea.Batch(flashAt(levelFor(msg.nothing), msg.what), v.refresh())
	case groupsChangedMsg:
		return v.refresh()
	case recordsChangedMsg:
		if msg.group == "" {
			v.counts = map[string]recordCount{}
		} else {
			delete(v.counts, msg.group)
		}
		return v.countVisible()
	case deleteProgress:
		v.deleting = &msg
		if !msg.done {
			return listenDelete(v.vid, msg.ch)
		}
		v.deleting = nil
		return v.recordsDeleted(msg)
	case tea.KeyPressMsg:
		return v.key(msg)
	default:
		cmd, _ := v.table.Update(msg)
		return tea.Batch(cmd, v.countVisible())
	}
}

// more fetches the next page when the cursor nears the end.
func (v *groupsView) more() tea.Cmd {
	if !v.loading && v.table.WantsMore() {
		return v.fetch()
	}
	return nil
}

func (v *groupsView) key(msg tea.KeyPressMsg) tea.Cmd {
	if v.confirm != nil {
		c := v.confirm
		v.confirm = nil
		return answer(c, msg)
	}
	if v.askingDelete() { // esc gives the delete up; the count is dropped
		if v.c.Keys.Back.Matches(msg) {
			v.working = ""
			v.delGen++
			return flashInfo("cancelled")
		}
		return nil
	}
	if v.deleting != nil { // one deletion at a time: it ends with its group's
		return nil
	}
	lookup := findOnEnter(v.table, msg)
	if cmd, handled := v.table.Update(msg); handled {
		return tea.Batch(cmd, v.more(), v.countVisible(), lookup)
	}
	k := v.c.Keys
	g, ok := v.table.Selected()
	switch {
	case k.Refresh.Matches(msg):
		return v.refresh()
	case k.New.Matches(msg):
		return v.c.open(newGroupFormView(v.c, v.vid))
	case !ok:
		return nil
	case k.Open.Matches(msg):
		return v.c.open(newGroupView(v.c, g.EnrollmentGroupID))
	case k.Describe.Matches(msg):
		return v.c.open(newDescribeView(v.c, describeSubject{kind: describeGroup, id: g.EnrollmentGroupID}))
	case k.Toggle.Matches(msg):
		v.askToggle(g)
		return nil
	case k.Edit.Matches(msg):
		return v.c.open(newGroupEditView(v.c, g.EnrollmentGroupID))
	case k.Derive.Matches(msg):
		return v.c.open(newDeriveView(v.c, g.EnrollmentGroupID, ""))
	case k.Simulate.Matches(msg):
		return v.c.open(newSimulateView(v.c, g.EnrollmentGroupID, ""))
	case k.Fleet.Matches(msg):
		return v.c.open(newFleetView(v.c, g.EnrollmentGroupID))
	case k.Delete.Matches(msg):
		v.working = "counting"
		v.delGen++
		gen, id, svc, ctx := v.delGen, g.EnrollmentGroupID, v.c.Target.Service, v.c.Ctx
		return do(v.vid, func() tea.Msg {
			n, _, err := countRecords(ctx, svc, id, 0)
			return deleteCountMsg{gen: gen, groupID: id, n: n, err: err}
		})
	}
	return nil
}

// askToggle asks before enabling or disabling the group as listed.
func (v *groupsView) askToggle(g dps.EnrollmentGroup) {
	id := g.EnrollmentGroupID
	v.confirm = toggleConfirm(g.ProvisioningStatus,
		fmt.Sprintf("Disable enrollment group %s?\nIts devices can no "+
			"longer register or re-register; devices already in their IoT hub stay there.", id),
		fmt.Sprintf("Enable enrollment group %s?\nIts devices can register again.", id),
		func(next dps.ProvisioningStatus) tea.Cmd { return v.setStatus(id, next) })
}

// setStatus enables or disables a group. DPS replaces the whole group on
// PUT, so the keys are fetched and sent back unchanged, under the group's
// ETag. It sets the status that was confirmed, not the opposite of what
// the service holds now.
func (v *groupsView) setStatus(id string, next dps.ProvisioningStatus) tea.Cmd {
	v.working = "toggle"
	svc, ctx := v.c.Target.Service, v.c.Ctx
	return do(v.vid, func() tea.Msg {
		cur, err := readGroupWithKeys(ctx, svc, id)
		if err != nil {
			return groupChangedMsg{what: "reading " + id, err: err}
		}
		if cur.ProvisioningStatus == next {
			return groupChangedMsg{what: fmt.Sprintf("group %s is %s already", id, next), nothing: true}
		}
		cur.ProvisioningStatus = next
		etag := azcore.ETag(cur.ETag)
		if _, err := svc.CreateOrUpdateEnrollmentGroup(ctx, cur, &dps.WriteOptions{IfMatch: &etag}); err != nil {
			return groupChangedMsg{what: "updating " + id, err: err}
		}
		return groupChangedMsg{what: fmt.Sprintf("group %s is now %s", id, next)}
	})
}

// askDelete opens the delete dialog once the group's records are counted.
func (v *groupsView) askDelete(m deleteCountMsg) tea.Cmd {
	if m.err != nil {
		return flashErr(fmt.Errorf("counting the records of %s: %s", m.groupID, dps.ErrorMessage(m.err)))
	}
	id := m.groupID
	if m.n == 0 {
		v.confirm = &confirm.Dialog{
			Text:    fmt.Sprintf("Delete enrollment group %s? It has no registration records.", id),
			Choices: []confirm.Choice{{Key: "y", Label: "delete the group", Run: func() tea.Cmd { return v.deleteGroup(id) }}},
		}
		return nil
	}
	v.confirm = &confirm.Dialog{
		Text: fmt.Sprintf("Delete enrollment group %s?\n\nIt still has %s. Records of a deleted group "+
			"become orphans that still count against the DPS quota; delete them first.", id, plural(m.n, "registration record", "registration records")),
		Choices: []confirm.Choice{
			{Key: "r", Label: fmt.Sprintf("delete the %s first, then the group (recommended)", plural(m.n, "record", "records")), Run: func() tea.Cmd {
				v.pendingGroupDelete, v.deleting = id, &deleteProgress{total: m.n}
				return startDeleteRecords(v.c.Ctx, v.vid, v.c.Target.Service, id, nil, nil, m.n)
			}},
			{Key: "y", Label: "delete only the group, leaving its records as orphans", Run: func() tea.Cmd { return v.deleteGroup(id) }},
		},
	}
	return nil
}

func (v *groupsView) recordsDeleted(p deleteProgress) tea.Cmd {
	id := v.pendingGroupDelete
	v.pendingGroupDelete = ""
	if p.firstErr != nil || p.failed > 0 {
		return flashErr(fmt.Errorf("deleted %d of %d records of %s; %d failed (%s); the group was kept",
			p.deleted, p.total, id, p.failed, dps.ErrorMessage(p.firstErr)))
	}
	return tea.Batch(flash(fmt.Sprintf("deleted %s of %s", plural(p.deleted, "record", "records"), id)), v.deleteGroup(id))
}

func (v *groupsView) deleteGroup(id string) tea.Cmd {
	v.working = "delete"
	svc, ctx, journal, log := v.c.Target.Service, v.c.Ctx, v.c.Target.Journal, v.c.Logger
	return do(v.vid, func() tea.Msg {
		if err := svc.DeleteEnrollmentGroup(ctx, id, nil); err != nil {
			return groupChangedMsg{what: "deleting " + id, err: err}
		}
		if journal != nil {
			if err := journal.Deleted(id); err != nil {
				log.Warn("recording a deleted group in the journal", "group", id, "error", err)
			}
		}
		return groupChangedMsg{what: "deleted enrollment group " + id}
	})
}

func (v *groupsView) View() string {
	if v.confirm != nil {
		return v.confirm.View(v.c.Styles, v.c.Width)
	}
	if v.deleting != nil {
		return progressLine(v.c, *v.deleting, "deleting records")
	}
	if v.err != "" && v.table.Loaded() == 0 {
		return errorText(v.c, v.err) + "\n\n" + v.c.Styles.Muted.Render("r retries")
	}
	return v.table.View()
}
