package tui

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/dpsconsole/dpsconsole/dps"
)

var testUpdated = time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)

func makeRecords(n int) []record {
	hubs := []string{"hub-one.azure-devices.net", "hub-two.azure-devices.net"}
	out := make([]record, n)
	for i := range out {
		id := fmt.Sprintf("device-%07d", i)
		out[i] = record{id: id, device: id, hub: hubs[i%2], status: dps.StatusAssigned, sub: dps.SubstatusInitialAssignment, updated: testUpdated}
	}
	return out
}

func newTestTable(t testing.TB, c *Common, n int, more bool) *Table[record] {
	tb := newRecordTable(c, 1)
	tb.SetSize(c.Width, c.Height)
	tb.Append(makeRecords(n), more)
	return tb
}

func TestTableRendersOnlyTheWindow(t *testing.T) {
	c := testCommon(t, 100, 12)
	tb := newTestTable(t, c, 1000, false)
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
	c := testCommon(t, 100, 12)
	tb := newTestTable(t, c, 100, true)
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
	tb.Append(makeRecords(100)[:10], false)
	if tb.WantsMore() {
		t.Fatal("no more pages: nothing to fetch")
	}
}

func TestTableFilterRunsInACmdAndDropsStaleRuns(t *testing.T) {
	c := testCommon(t, 100, 12)
	tb := newTestTable(t, c, 5000, false)
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
	tb.Append([]record{{id: "x-00012-late"}}, false)
	if tb.Len() != 112 {
		t.Fatalf("late page not filtered: %d", tb.Len())
	}
	update(press("esc"))
	if tb.Len() != 5001 {
		t.Fatalf("esc clears the filter: %d", tb.Len())
	}
}

func TestTableMarksAndMarkAll(t *testing.T) {
	c := testCommon(t, 100, 12)
	tb := newTestTable(t, c, 100, true)
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
	c := testCommon(t, 100, 12)
	tb := newTestTable(t, c, 30, false)
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

func TestTableGolden(t *testing.T) {
	for _, size := range [][2]int{{80, 8}, {140, 8}, {40, 6}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			c := testCommon(t, size[0], size[1])
			tb := newTestTable(t, c, 50, true)
			tb.MoveBy(1)
			tb.ToggleMark()
			golden.RequireEqual(t, plain(tb.View()))
		})
	}
}

func TestContainsFold(t *testing.T) {
	for _, tc := range []struct {
		s, q string
		want bool
	}{{"Device-ABC", "abc", true}, {"device", "", true}, {"dev", "device", false}, {"x-Y-z", "y-z", true}, {"abc", "abd", false}} {
		if got := containsFold(tc.s, tc.q); got != tc.want {
			t.Errorf("containsFold(%q, %q) = %v", tc.s, tc.q, got)
		}
	}
}

// BenchmarkTableMoveView1M is one keystroke on a table holding 1,000,000
// registration records: a cursor move plus rendering the window.
func BenchmarkTableMoveView1M(b *testing.B) {
	c := testCommon(b, 120, 35)
	c.Styles = NewStyles(true, false)
	tb := newTestTable(b, c, 1_000_000, true)
	tb.MoveBy(500_000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tb.Update(press("down"))
		} else {
			tb.Update(press("up"))
		}
		_ = tb.View()
	}
}

// BenchmarkTableFilter100k is the filter Cmd's work over 100,000 loaded rows.
func BenchmarkTableFilter100k(b *testing.B) {
	items := makeRecords(100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n := len(filterIndices(items, "device-00012", recordMatch)); n != 100 {
			b.Fatalf("matched %d", n)
		}
	}
}

// BenchmarkTableMemory1M reports the heap a table of 1,000,000 records holds.
func BenchmarkTableMemory1M(b *testing.B) {
	c := testCommon(b, 120, 35)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tb := newRecordTable(c, 1)
		for p := 0; p < 1000; p++ { // pages as the console receives them
			tb.Append(toRecords(makeStates(p*1000, 1000)), true)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MB-held")
		runtime.KeepAlive(tb)
	}
}

func makeStates(from, n int) []dps.DeviceRegistrationState {
	out := make([]dps.DeviceRegistrationState, n)
	for i := range out {
		id := fmt.Sprintf("device-%07d", from+i)
		out[i] = dps.DeviceRegistrationState{RegistrationID: id, DeviceID: strings.Clone(id), AssignedHub: fmt.Sprintf("hub-%d.azure-devices.net", i%2),
			Status: dps.RegistrationStatus(strings.Clone("assigned")), Substatus: dps.Substatus(strings.Clone("initialAssignment")), LastUpdatedDateTimeUTC: testUpdated}
	}
	return out
}

// TestTableViewDoesNotScanFilteredRowsEachFrame: with a filter and a mark,
// the hidden-marks note is worked out once, not on every View.
func TestTableViewDoesNotScanFilteredRowsEachFrame(t *testing.T) {
	c := testCommon(t, 100, 12)
	keyCalls := 0
	tb := NewTable(c, 1, recordColumns, func(r record) string { keyCalls++; return r.id }, recordCells, recordMatch)
	tb.SetSize(c.Width, c.Height)
	tb.Append(makeRecords(100_000), false)
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
	c := testCommon(t, 100, 12)
	tb := newTestTable(t, c, 10, false)
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
