package table

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// sortEnv is testEnv with the sort keys and a body as tall as the table.
func sortEnv(bodyHeight int) Env {
	env := testEnv()
	env.Keys.Sort, env.Keys.SortReverse = keys("o"), keys("O")
	env.BodyHeight = func() int { return bodyHeight }
	return env
}

func sortTable(t *testing.T, rows []row) *Table[row] {
	tb := New(sortEnv(12), rowColumns, rowKey, rowCells, rowMatch)
	tb.SetSize(100, 12)
	tb.Append(rows, false)
	return tb
}

// key presses k and runs the Cmd the table returns, as the Program would.
func (t *Table[V]) pressRun(tb testing.TB, k string) {
	cmd, _ := t.Update(press(k))
	drain(tb, func(msg tea.Msg) tea.Cmd { c, _ := t.Update(msg); return c }, cmd, 5)
}

func ids(t *Table[row]) string {
	var out []string
	for i := range t.Len() {
		out = append(out, t.At(i).id)
	}
	return strings.Join(out, " ")
}

var shuffled = []row{{"c", "hub-b"}, {"a", "hub-b"}, {"d", "hub-a"}, {"b", "hub-a"}}

func TestSortByEachColumnMarksTheHeaderAndFlips(t *testing.T) {
	tb := sortTable(t, shuffled)
	cmd, handled := tb.Update(press("o"))
	if !handled || cmd == nil || !strings.Contains(tb.Meta(), "sorting…") {
		t.Fatalf("o starts a sort off the event loop (handled %v, meta %q)", handled, tb.Meta())
	}
	if ids(tb) != "c a d b" {
		t.Fatal("the rows change only when the sort's result arrives")
	}
	drain(t, func(msg tea.Msg) tea.Cmd { c, _ := tb.Update(msg); return c }, cmd, 5)
	out := plain(tb.View())
	if ids(tb) != "a b c d" || !strings.Contains(out, "ID ↑") || !strings.Contains(out, "sorted by ID ↑: 4 loaded rows") {
		t.Fatalf("sorted by ID: %s\n%s", ids(tb), out)
	}
	tb.pressRun(t, "o") // the next column; equal hubs keep their order (a stable sort)
	if ids(tb) != "b d a c" || !strings.Contains(plain(tb.View()), "HUB ↑") {
		t.Fatalf("sorted by HUB: %s\n%s", ids(tb), plain(tb.View()))
	}
	tb.pressRun(t, "O")
	if col, desc := tb.Sorted(); ids(tb) != "a c b d" || col != 1 || !desc || !strings.Contains(plain(tb.View()), "HUB ↓") {
		t.Fatalf("O flips the sort: %s\n%s", ids(tb), plain(tb.View()))
	}
	tb.pressRun(t, "o") // round to the first column again
	if col, _ := tb.Sorted(); col != 0 {
		t.Fatalf("o after the last column sorts by the first, got %d", col)
	}
}

func TestSortDropsStaleResults(t *testing.T) {
	tb := sortTable(t, shuffled)
	byID := tb.SortBy(0, false)
	byHub := tb.SortBy(1, true)
	run := func(cmd tea.Cmd) { tb.Update(cmd().(routed).msg) }
	run(byHub)
	run(byID) // older: dropped
	if col, desc := tb.Sorted(); col != 1 || !desc || ids(tb) != "c a d b" {
		t.Fatalf("the older sort's result was applied: col %d desc %v, %s", col, desc, ids(tb))
	}
	stale := tb.SortBy(0, false)
	tb.Reset()
	tb.Append(shuffled[:2], false)
	run(stale)
	if col, _ := tb.Sorted(); ids(tb) != "c a" || col != -1 || strings.Contains(tb.View(), "sorted") || strings.Contains(tb.View(), "↓") {
		t.Fatalf("a refresh loads in load order, unmarked; a sort of the rows before it was applied: %s\n%s", ids(tb), plain(tb.View()))
	}
	stale = tb.SortBy(0, false)
	tb.Remove(map[string]bool{"c": true})
	run(stale)
	if ids(tb) != "a" {
		t.Fatalf("a sort of the rows before a deletion was applied: %s", ids(tb))
	}
}

func TestSortKeepsCursorMarksAndFilter(t *testing.T) {
	tb := sortTable(t, shuffled)
	tb.MoveBy(2) // on d
	tb.ToggleMark()
	tb.pressRun(t, "O") // ID, descending
	if sel, _ := tb.Selected(); sel.id != "d" || !tb.IsMarked("d") || tb.MarkedCount() != 1 || ids(tb) != "d c b a" {
		t.Fatalf("cursor on %q, marks %v, rows %s", sel.id, tb.Marked(), ids(tb))
	}
	tb.query = "hub-a"
	tb.refilter()
	tb.pressRun(t, "o") // by HUB, rows the filter shows only
	if ids(tb) != "d b" {
		t.Fatalf("filtered and sorted: %s", ids(tb))
	}
	// Rows loaded after the sort follow, and the meta says so.
	tb.Append([]row{{"aa", "hub-a"}}, false)
	if !strings.Contains(tb.Meta(), "sorted by HUB ↑: 4 loaded rows, 1 loaded since follow unsorted") || ids(tb) != "d b aa" {
		t.Fatalf("meta %q, rows %s", tb.Meta(), ids(tb))
	}
}

func TestSortCountsByValue(t *testing.T) {
	for _, c := range []struct{ a, b string }{{"999", "1,000"}, {"99", "100+"}, {"2", "10"}, {"0", "1"}, {"abc", "abd"}, {"10", "9a"}} {
		if keyOf(c.a).compare(keyOf(c.b)) >= 0 {
			t.Errorf("%q should sort before %q", c.a, c.b)
		}
	}
}

func TestClickSelectsTheRow(t *testing.T) {
	tb := sortTable(t, makeRows(100))
	tb.MoveBy(30) // scrolled: row 30 is at the bottom of the window
	start, _ := tb.Window()
	_, handled := tb.Update(tea.MouseClickMsg{X: 5, Y: 1 + 3, Button: tea.MouseLeft}) // below the titles
	if !handled || tb.Cursor() != start+3 {
		t.Fatalf("click on the 4th row shown: cursor %d, want %d", tb.Cursor(), start+3)
	}
	if _, handled := tb.Update(tea.MouseClickMsg{X: 5, Y: 0, Button: tea.MouseLeft}); handled {
		t.Fatal("a click on the column titles selects nothing")
	}
	// In a view that draws the table below other lines, Y counts from the
	// top of the view's body.
	tb.env.BodyHeight = func() int { return 12 + 5 }
	tb.Update(tea.MouseClickMsg{X: 5, Y: 5 + 1, Button: tea.MouseLeft})
	if tb.Cursor() != start {
		t.Fatalf("click below a 5-line head: cursor %d, want %d", tb.Cursor(), start)
	}
}

func TestStatusCellsAreColoured(t *testing.T) {
	type rec struct{ id, status string }
	cols := []Column{{Title: "ID", Weight: 1}, {Title: "STATUS", Width: 10, Status: true}}
	for _, noColor := range []bool{false, true} {
		env := sortEnv(6)
		env.Styles = theme.NewStyles(true, noColor)
		tb := New(env, cols, func(r rec) string { return r.id }, func(r rec) []string { return []string{r.id, r.status} },
			func(rec, string) bool { return true })
		tb.SetSize(60, 6)
		tb.Append([]rec{{"r0", "assigned"}, {"r1", "failed"}, {"r2", "assigning"}, {"r3", "disabled"}}, false)
		lines := strings.Split(tb.View(), "\n")
		for i, status := range []string{"failed", "assigning", "disabled"} {
			want, ok := env.Styles.Status(status)
			styled := ok && strings.Contains(lines[2+i], want.Render(theme.Fit(status, 10))) && strings.Contains(lines[2+i], "\x1b[")
			if styled == noColor || (noColor && strings.Contains(lines[2+i], "\x1b[")) {
				t.Errorf("noColor=%v: %s styled %v: %q", noColor, status, styled, lines[2+i])
			}
		}
		if !noColor && (strings.Count(lines[1], "\x1b[") > 4) {
			t.Errorf("the cursor's row keeps one style, its status uncoloured: %q", lines[1])
		}
	}
}

func TestWideTableCapsSharedColumns(t *testing.T) {
	cols := []Column{{Title: "ID", Weight: 2, MaxWidth: 40}, {Title: "CREATED", Width: 19, MinTable: 150}}
	tb := New(sortEnv(6), cols, rowKey, rowCells, rowMatch)
	tb.SetSize(120, 6)
	if ws := tb.colWidths(); ws[0] != 40 || ws[1] != -1 {
		t.Fatalf("at 120: %v", ws)
	}
	tb.SetSize(300, 6)
	if ws := tb.colWidths(); ws[0] != 40 || ws[1] != 19 {
		t.Fatalf("at 300 the ID stays 40 wide and CREATED shows: %v", ws)
	}
}
