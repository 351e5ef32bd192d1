package table

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// row is the item of the test tables: a registration ID and its hub.
type row struct{ id, hub string }

var rowColumns = []Column{{Title: "ID", Weight: 2}, {Title: "HUB", Weight: 1}}

func rowKey(r row) string { return r.id }

func rowCells(r row) []string { return []string{r.id, r.hub} }

func rowMatch(r row, q string) bool { return ContainsFold(r.id, q) || ContainsFold(r.hub, q) }

func makeRows(n int) []row {
	hubs := []string{"hub-one.azure-devices.net", "hub-two.azure-devices.net"}
	out := make([]row, n)
	for i := range out {
		out[i] = row{id: fmt.Sprintf("device-%07d", i), hub: hubs[i%2]}
	}
	return out
}

// binding is a bubbles key binding as the table's Binding.
type binding struct{ key.Binding }

func (b binding) Matches(msg tea.KeyPressMsg) bool { return key.Matches(msg, b.Binding) }

func keys(ks ...string) binding { return binding{key.NewBinding(key.WithKeys(ks...))} }

// routed and flashed are what the test Env wraps the table's messages and
// flashes in, as the console routes them to a view.
type (
	routed  struct{ msg tea.Msg }
	flashed string
)

func testEnv() Env {
	return Env{
		Styles: theme.NewStyles(true, true),
		Keys: Keys{Up: keys("up", "k"), Down: keys("down", "j"), PageUp: keys("pgup", "ctrl+b"), PageDown: keys("pgdown", "ctrl+f"),
			Top: keys("g", "home"), Bottom: keys("G", "end"), Filter: keys("/")},
		Route: func(msg tea.Msg) tea.Msg { return routed{msg} },
		Flash: func(text string) tea.Cmd { return func() tea.Msg { return flashed(text) } },
	}
}

func newTestTable(t testing.TB, w, h, n int, more bool) *Table[row] {
	tb := New(testEnv(), rowColumns, rowKey, rowCells, rowMatch)
	tb.SetSize(w, h)
	tb.Append(makeRows(n), more)
	return tb
}

func press(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// drain runs a Cmd as the Program would and feeds every routed result to
// update, then what that returns; other messages (debounce ticks the table
// did not route, cursor blinks) are dropped.
func drain(t testing.TB, update func(tea.Msg) tea.Cmd, cmd tea.Cmd, depth int) {
	t.Helper()
	if cmd == nil || depth <= 0 {
		return
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-done:
	case <-time.After(5 * time.Second):
		return
	}
	switch m := msg.(type) {
	case tea.BatchMsg:
		for _, c := range m {
			drain(t, update, c, depth)
		}
	case routed:
		drain(t, update, update(m.msg), depth-1)
	}
}

// plain strips ANSI and trailing spaces.
func plain(s string) string {
	lines := strings.Split(ansi.Strip(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func TestTableRendersOnlyTheWindow(t *testing.T) {
	tb := newTestTable(t, 100, 12, 1000, false)
	lines := strings.Split(tb.View(), "\n")
	if len(lines) != 12 {
		t.Fatalf("View has %d lines, want the table's height 12", len(lines))
	}
	out := plain(tb.View())
	if !strings.Contains(out, "device-0000000") || strings.Contains(out, "device-0000010") {
		t.Fatalf("first window should show rows 0-9 only:\n%s", out)
	}
	tb.Update(press("pgdown"))
	tb.Update(press("down"))
	if got := tb.cursor; got != 11 {
		t.Fatalf("cursor after pgdown+down = %d, want 11", got)
	}
	tb.Update(press("G"))
	if r, _ := tb.Selected(); r.id != "device-0000999" {
		t.Fatalf("G selects %s, want the last row", r.id)
	}
	out = plain(tb.View())
	if !strings.Contains(out, "device-0000999") || strings.Contains(out, "device-0000000") {
		t.Fatalf("last window wrong:\n%s", out)
	}
	if !strings.Contains(out, "1000/1000") {
		t.Fatalf("meta line should say 1000/1000:\n%s", out)
	}
}

func TestTableAsksForTheNextPageNearTheEnd(t *testing.T) {
	tb := newTestTable(t, 100, 12, 100, true)
	if tb.WantsMore() {
		t.Fatal("cursor at the top of 100 loaded rows must not fetch yet")
	}
	tb.MoveBy(85)
	if !tb.WantsMore() {
		t.Fatal("cursor 15 rows from the end of what is loaded should fetch the next page")
	}
	if !strings.Contains(plain(tb.View()), "100/100+") {
		t.Fatalf("meta should show that more pages exist:\n%s", plain(tb.View()))
	}
	tb.Append(makeRows(100)[:10], false)
	if tb.WantsMore() {
		t.Fatal("no more pages: nothing to fetch")
	}
}

func TestTableFilterRunsInACmdAndDropsStaleRuns(t *testing.T) {
	tb := newTestTable(t, 100, 12, 5000, false)
	update := func(m tea.Msg) tea.Cmd { cmd, _ := tb.Update(m); return cmd }
	update(press("/"))
	if !tb.Filtering() {
		t.Fatal("/ should open the filter prompt")
	}
	var cmds []tea.Cmd
	for _, r := range "00012" {
		cmds = append(cmds, update(tea.KeyPressMsg{Code: r, Text: string(r)}))
	}
	if tb.Len() != 5000 {
		t.Fatal("typing must not filter on the event loop")
	}
	// Only the last debounce tick is current; earlier ones are dropped.
	drain(t, update, cmds[0], 5)
	if tb.Len() != 5000 {
		t.Fatalf("a stale tick filtered: %d rows", tb.Len())
	}
	drain(t, update, cmds[len(cmds)-1], 5)
	if tb.Len() != 111 {
		t.Fatalf("filter 00012 matched %d rows, want 111 (0000012, 000012x, 00012xx)", tb.Len())
	}
	update(press("enter"))
	if tb.Filtering() || tb.query != "00012" {
		t.Fatal("enter keeps the filter and leaves the prompt")
	}
	out := plain(tb.View())
	if !strings.Contains(out, "111/5000") {
		t.Fatalf("meta should show filtered/total:\n%s", out)
	}
	// A page arriving while filtered is filtered as it lands.
	tb.Append([]row{{id: "x-00012-late"}}, false)
	if tb.Len() != 112 {
		t.Fatalf("late page not filtered: %d", tb.Len())
	}
	update(press("esc"))
	if tb.Len() != 5001 {
		t.Fatalf("esc clears the filter: %d", tb.Len())
	}
}

func TestTableMarksAndMarkAll(t *testing.T) {
	tb := newTestTable(t, 100, 12, 100, true)
	tb.ToggleMark()
	tb.MoveBy(2)
	tb.ToggleMark()
	if got := tb.MarkedCount(); got != 2 {
		t.Fatalf("marked %d, want 2", got)
	}
	if got := tb.Marked(); len(got) != 2 || got[0] != "device-0000000" || got[1] != "device-0000002" {
		t.Fatalf("Marked() = %v", got)
	}
	if !tb.ToggleMarkAll() {
		t.Fatal("ctrl+a should switch mark-all on")
	}
	if tb.MarkedCount() != -1 || !strings.Contains(tb.Meta(), "counting") {
		t.Fatalf("mark-all before the count: %d %q", tb.MarkedCount(), tb.Meta())
	}
	tb.SetAllCount(1_000_000) // the source is bigger than what is loaded
	tb.ToggleMark()           // unmark the row under the cursor
	if got := tb.MarkedCount(); got != 999_999 {
		t.Fatalf("mark-all minus one = %d", got)
	}
	if !tb.IsMarked("device-0000050") || tb.IsMarked("device-0000002") {
		t.Fatal("mark-all must cover unloaded-looking rows and honour the exception")
	}
	if tb.ToggleMarkAll() || tb.MarkedCount() != 0 {
		t.Fatal("second ctrl+a clears every mark")
	}
}

func TestTableHiddenMarksAreCounted(t *testing.T) {
	tb := newTestTable(t, 100, 12, 30, false)
	tb.ToggleMark() // device-0000000
	tb.query = "00002"
	tb.refilter()
	if got := tb.HiddenMarks(); got != 1 {
		t.Fatalf("hidden marks = %d, want 1", got)
	}
	if !strings.Contains(tb.Meta(), "1 hidden by the filter") {
		t.Fatalf("meta should warn about hidden marks: %q", tb.Meta())
	}
}

func TestContainsFold(t *testing.T) {
	for _, tc := range []struct {
		s, q string
		want bool
	}{{"Device-ABC", "abc", true}, {"device", "", true}, {"dev", "device", false}, {"x-Y-z", "y-z", true}, {"abc", "abd", false}} {
		if got := ContainsFold(tc.s, tc.q); got != tc.want {
			t.Errorf("ContainsFold(%q, %q) = %v", tc.s, tc.q, got)
		}
	}
}

// BenchmarkTableFilter100k is the filter Cmd's work over 100,000 loaded rows.
func BenchmarkTableFilter100k(b *testing.B) {
	items := makeRows(100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n := len(filterIndices(items, "device-00012", rowMatch)); n != 100 {
			b.Fatalf("matched %d", n)
		}
	}
}

// TestTableViewDoesNotScanFilteredRowsEachFrame: with a filter and a mark,
// the hidden-marks note is worked out once, not on every View.
func TestTableViewDoesNotScanFilteredRowsEachFrame(t *testing.T) {
	keyCalls := 0
	tb := New(testEnv(), rowColumns, func(r row) string { keyCalls++; return r.id }, rowCells, rowMatch)
	tb.SetSize(100, 12)
	tb.Append(makeRows(100_000), false)
	tb.ToggleMark() // device-0000000
	tb.setQuery("device-00001")
	tb.Update(filterDone{tag: tb.filterTag, query: tb.query, scanned: len(tb.items), visible: filterIndices(tb.items, tb.query, tb.match)})
	if !strings.Contains(plain(tb.View()), "1 marked (1 hidden by the filter)") {
		t.Fatalf("meta should count the hidden mark:\n%s", plain(tb.View()))
	}
	keyCalls = 0
	tb.View()
	if keyCalls > 2*tb.rowsHeight() {
		t.Fatalf("one View called key %d times for %d visible rows; it scans the filtered rows", keyCalls, tb.rowsHeight())
	}
	tb.ToggleMark() // mark the first filtered row: the note follows
	if out := plain(tb.View()); !strings.Contains(out, "2 marked (1 hidden by the filter)") {
		t.Fatalf("meta after a second mark:\n%s", out)
	}
}

// TestTableAllMarkedReturnsACopy: the skip set handed to a deletion's
// goroutine must not change under it when marks change.
func TestTableAllMarkedReturnsACopy(t *testing.T) {
	tb := newTestTable(t, 100, 12, 10, false)
	tb.ToggleMarkAll()
	tb.ToggleMark() // unmark device-0000000
	_, skip := tb.AllMarked()
	tb.ToggleMark() // mark it again
	if !skip["device-0000000"] {
		t.Fatal("the skip set changed after it was handed out")
	}
	skip["device-0000001"] = true
	if !tb.IsMarked("device-0000001") {
		t.Fatal("writing the returned skip set changed the table")
	}
}

// TestClearingAFilterKeepsTheSelection: the row selected under the filter is
// still selected once the filter is cleared, and narrowing keeps it too.
func TestClearingAFilterKeepsTheSelection(t *testing.T) {
	tb := newTestTable(t, 100, 12, 5000, false)
	update := func(m tea.Msg) tea.Cmd { cmd, _ := tb.Update(m); return cmd }
	update(press("/"))
	var last tea.Cmd
	for _, r := range "0001" {
		last = update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	drain(t, update, last, 5)
	update(press("enter"))
	tb.MoveBy(25)
	want, _ := tb.Selected()
	if !strings.Contains(want.id, "0001") {
		t.Fatalf("unexpected selection %s", want.id)
	}
	update(press("esc"))
	if got, _ := tb.Selected(); got.id != want.id || tb.Len() != 5000 {
		t.Fatalf("after clearing the filter %s is selected (of %d rows), want %s", got.id, tb.Len(), want.id)
	}
	// Filtering again keeps the row when it still passes.
	update(press("/"))
	for _, r := range "0001" {
		last = update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	drain(t, update, last, 5)
	if got, _ := tb.Selected(); got.id != want.id {
		t.Fatalf("re-filtering selected %s, want %s", got.id, want.id)
	}
}

// TestRefreshKeepsTheCursorOnTheSameRow: after a refresh the cursor is back
// on the row it was on, by key, even when that row is pages deep; a row that
// is gone leaves the cursor where it was.
func TestRefreshKeepsTheCursorOnTheSameRow(t *testing.T) {
	tb := newTestTable(t, 100, 12, 100, true)
	tb.Append(makeRows(300)[100:200], true)
	tb.MoveBy(150)
	tb.Reset()
	all := makeRows(300)
	tb.Append(all[:100], true)
	if !tb.WantsMore() {
		t.Fatal("a refresh must load pages again until the selected row is back")
	}
	tb.Append(all[100:200], true)
	if r, _ := tb.Selected(); r.id != "device-0000150" {
		t.Fatalf("after the refresh %s is selected, want device-0000150", r.id)
	}
	// The selected row was deleted meanwhile: the row now in its place.
	tb.Reset()
	tb.Append(append(all[:150:150], all[151:200]...), false)
	if r, _ := tb.Selected(); r.id != "device-0000151" {
		t.Fatalf("after its row went, %s is selected, want the next one", r.id)
	}
}

// TestPageDownBurstPassesTheLoadedEdge: page-downs pressed faster than pages
// arrive carry on into the next page instead of stopping at its edge.
func TestPageDownBurstPassesTheLoadedEdge(t *testing.T) {
	tb := newTestTable(t, 100, 12, 100, true)
	start, end := tb.Window()
	h := end - start
	for range 15 {
		tb.Update(press("pgdown"))
	}
	if !tb.WantsMore() {
		t.Fatal("the burst should want the next page")
	}
	tb.Append(makeRows(300)[100:300], true)
	if tb.cursor != 15*h {
		t.Fatalf("after 15 page-downs and the next page the cursor is on row %d, want %d", tb.cursor, 15*h)
	}
	tb.Update(press("up"))
	if tb.cursor != 15*h-1 {
		t.Fatalf("up after the burst: row %d", tb.cursor)
	}
}

// TestRefreshReloadShowsProgressAndStops: a refresh reloading pages up to
// the selected row says so, and esc stops it.
func TestRefreshReloadShowsProgressAndStops(t *testing.T) {
	tb := newTestTable(t, 100, 12, 3000, true)
	tb.MoveBy(2500)
	tb.Reset()
	tb.Append(makeRows(1000), true)
	if !strings.Contains(tb.Meta(), "reloading up to the selected row: 1,000 of 3,000…") {
		t.Fatalf("meta %q", tb.Meta())
	}
	tb.Update(press("esc"))
	if tb.WantsMore() || strings.Contains(tb.Meta(), "reloading") {
		t.Fatalf("esc should stop the reload: %q", tb.Meta())
	}
}

// TestMarksFollowTheirRowsThroughRemove: marks are kept by row; removing
// rows keeps the marks of the others on them.
func TestMarksFollowTheirRowsThroughRemove(t *testing.T) {
	tb := newTestTable(t, 100, 12, 10, false)
	for _, i := range []int{1, 3, 5} {
		tb.MoveBy(i - tb.cursor)
		tb.ToggleMark()
	}
	tb.Remove(map[string]bool{"device-0000003": true, "device-0000004": true})
	if got := tb.Marked(); len(got) != 2 || got[0] != "device-0000001" || got[1] != "device-0000005" || tb.MarkedCount() != 2 {
		t.Fatalf("after Remove: marked %v (%d)", got, tb.MarkedCount())
	}
	if !tb.IsMarked("device-0000005") || tb.IsMarked("device-0000006") {
		t.Fatal("the mark moved to another row")
	}
	if r, _ := tb.Selected(); r.id != "device-0000005" {
		t.Fatalf("the cursor was on device-0000005; after rows above it went it is on %s", r.id)
	}
	tb.Remove(map[string]bool{"device-0000005": true})
	if r, _ := tb.Selected(); r.id != "device-0000006" {
		t.Fatalf("after its row went the cursor is on %s, want the next one", r.id)
	}
}

// BenchmarkTableMarkShown1M is ctrl+a on 1,000,000 loaded records: it runs
// in Update, so it must stay well under a frame.
func BenchmarkTableMarkShown1M(b *testing.B) {
	tb := newTestTable(b, 120, 35, 1_000_000, true)
	b.ResetTimer()
	for b.Loop() {
		tb.ToggleShown()
	}
}
