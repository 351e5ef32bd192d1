// Package table is a windowed table of loaded items: it renders only the
// visible rows, asks for the next page, filters off the event loop and marks
// rows.
package table

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// Column of a Table. Width 0 shares the space left by the fixed columns,
// in proportion to Weight (0 counts as 1); MinTable hides the column when
// the table is narrower than that.
type Column struct {
	Title    string
	Width    int
	MinTable int
	Weight   int
	// MaxWidth caps a shared column (0: no cap), so a wide terminal shows
	// more columns instead of an ever wider ID.
	MaxWidth int
	// Status colours the column's cells by their value (assigned, failed…).
	Status bool
}

// Binding is a key binding the table acts on.
type Binding interface{ Matches(tea.KeyPressMsg) bool }

// Keys are the bindings the table handles itself.
type Keys struct {
	Up, Down, PageUp, PageDown, Top, Bottom, Filter Binding
	// Sort sorts by the next column (the last one back to load order);
	// SortReverse flips the direction.
	Sort, SortReverse Binding
}

// Env is what a table shares with the view that owns it.
type Env struct {
	Styles *theme.Styles
	Keys   Keys
	// Route wraps a table message so that it reaches the owning view.
	Route func(tea.Msg) tea.Msg
	// Flash reports a finished step in the header.
	Flash func(string) tea.Cmd
	// BodyHeight is the height of the screen area the owning view draws
	// in; a click's Y counts from its top, and the table sits at its
	// bottom. nil: clicks are ignored.
	BodyHeight func() int
}

// filterDebounce is how long typing must pause before the filter runs.
const filterDebounce = 120 * time.Millisecond

// Table is a windowed table of V (the shape of pug's table.Model[V]): it
// holds every loaded item but renders only the visible rows, tells its view
// when it wants the next page (the cursor nears the end of what is loaded,
// moves past it, or G asked for the true end), filters off the event loop,
// and marks rows — the shown ones, or "every row of the source", loaded or
// not.
type Table[V any] struct {
	env   Env
	cols  []Column
	cells func(V) []string
	key   func(V) string
	// match reports whether an item matches a lower-case query.
	match func(V, string) bool

	items []V // append-only between filter runs; deletions build a new slice
	more  bool
	// visible are indices into items passing the filter; nil when unfiltered.
	visible []int32

	input     textinput.Model
	filtering bool
	query     string
	filterTag int

	cursor, offset int
	width, height  int

	// ahead is how far a page-down burst wanted to go past the loaded rows;
	// the cursor gets there as pages land. toEnd is G on a partly loaded
	// list: every page loads, the cursor following to the last row.
	ahead int
	toEnd bool
	// restore is the key of the row the cursor was on before a refresh, put
	// back under the cursor when its page lands again; restoreRow is where
	// it was, restoreUpTo how many rows were loaded (when to give up).
	restore     string
	restoreRow  int
	restoreUpTo int

	// marked[i] says items[i] is marked (shorter than items: the rest are
	// not); by index, so marking a million shown rows hashes nothing.
	// nMarked counts them.
	marked  []bool
	nMarked int
	// allMarked means every row of the source, loaded or not, except those
	// in unmarked. allCount is the source's size once counted (-1 before).
	allMarked bool
	unmarked  map[string]bool
	allCount  int
	// hidden caches HiddenMarks (-1 = stale): View must not scan every
	// filtered row each frame.
	hidden int

	// sortCol is the column items are sorted by (-1: load order), sortDesc
	// its direction; items[:sorted] are in that order, rows loaded since
	// follow unsorted. sortGen drops a sort result the table has moved past
	// (a newer sort, a refresh, a deletion); sorting is true while one runs.
	sortCol  int
	sortDesc bool
	sorted   int
	sortGen  int
	sorting  bool
	sortCell func(V, int) string // nil: cells(v)[col]

	// statusCells caches status cells as rendered, by their padded text:
	// a frame shows a few values many times, and rendering is the cost.
	// statusFor is the palette they were rendered in.
	statusCells map[string]string
	statusFor   uintptr
}

// New makes an empty table.
func New[V any](env Env, cols []Column, key func(V) string, cells func(V) []string, match func(V, string) bool) *Table[V] {
	in := textinput.New()
	in.Prompt = "/"
	in.Placeholder = "filter"
	return &Table[V]{env: env, cols: cols, key: key, cells: cells, match: match,
		input: in, unmarked: map[string]bool{}, allCount: -1, hidden: -1, sortCol: -1}
}

// Msg is one of the table's own messages (filterTick, filterDone), routed to
// its view, which hands it back to Update.
type Msg interface{ tableMsg() }

type filterTick struct{ tag int }

type filterDone struct {
	tag     int
	query   string
	scanned int
	visible []int32
}

func (filterTick) tableMsg() {}
func (filterDone) tableMsg() {}

// SetSize sets the table's box, filter and meta lines included.
func (t *Table[V]) SetSize(w, h int) {
	t.width, t.height = w, max(h, 3)
	t.input.SetWidth(max(w-2, 1))
	t.clamp()
}

// rowsHeight is the number of data rows that fit.
func (t *Table[V]) rowsHeight() int {
	h := t.height - 2 // column titles + meta line
	if t.filtering || t.query != "" {
		h--
	}
	return max(h, 1)
}

// Reset empties the table (a refresh), keeping the filter text and — once
// its row is loaded again — the selected row.
func (t *Table[V]) Reset() {
	if it, ok := t.Selected(); ok && t.restore == "" {
		t.restore, t.restoreRow, t.restoreUpTo = t.key(it), t.cursor, len(t.items)
	}
	t.items, t.visible, t.more = nil, nil, false
	if t.query != "" {
		t.visible = []int32{}
	}
	t.cursor, t.offset = 0, 0
	t.ahead, t.toEnd = 0, false
	t.marked, t.nMarked, t.unmarked = nil, 0, map[string]bool{}
	t.allMarked, t.allCount, t.hidden = false, -1, -1
	// The rows come back in load order: a sort covered the rows it saw.
	t.sortCol, t.sortDesc, t.sorted, t.sorting = -1, false, 0, false
	t.sortGen++
}

// Append adds a fetched page; more says whether pages remain.
func (t *Table[V]) Append(page []V, more bool) {
	start := len(t.items)
	t.items = append(t.items, page...)
	t.more = more
	if t.query != "" {
		for i := start; i < len(t.items); i++ {
			if t.match(t.items[i], t.query) {
				t.visible = append(t.visible, int32(i))
			}
		}
		t.hidden = -1
	}
	t.settle(start)
}

// settle moves the cursor where it was asked to go once a page has landed
// (items from start on are new): back to the row selected before a refresh,
// on to the end for G, or as far as a page-down burst wanted.
func (t *Table[V]) settle(start int) {
	if t.restore != "" {
		if pos, ok := t.findFrom(start, t.restore); ok {
			t.cursor, t.restore = pos, ""
		} else if !t.more || len(t.items) >= t.restoreUpTo {
			t.cursor, t.restore = t.restoreRow, "" // it is gone: select the row in its place
		}
	}
	if t.toEnd {
		t.cursor = t.Len() - 1
		t.toEnd = t.more
	}
	if t.ahead > 0 {
		t.cursor += t.ahead
		t.ahead = 0
		t.overshoot()
	}
	t.clamp()
}

// findFrom finds the row with key k among items[start:], as a row index
// (an index into visible when filtered); ok is false when it is not there
// or the filter hides it.
func (t *Table[V]) findFrom(start int, k string) (int, bool) {
	for i := start; i < len(t.items); i++ {
		if t.key(t.items[i]) == k {
			return t.rowOf(i)
		}
	}
	return 0, false
}

// rowOf converts an index into items to a row index.
func (t *Table[V]) rowOf(i int) (int, bool) {
	if t.visible == nil {
		return i, true
	}
	pos, ok := slices.BinarySearch(t.visible, int32(i))
	return pos, ok
}

// selectedItem is the index into items of the row under the cursor, or -1.
func (t *Table[V]) selectedItem() int {
	if t.Len() == 0 {
		return -1
	}
	return t.itemAt(t.cursor)
}

// setVisible shows the rows vis lists (nil: every row), the cursor
// staying on its item when vis still shows it.
func (t *Table[V]) setVisible(vis []int32) {
	sel := t.selectedItem()
	t.visible, t.hidden = vis, -1
	t.reselect(sel)
}

// reselect puts the cursor back on items[i] after the rows changed, or on
// the first row when the filter hides it.
func (t *Table[V]) reselect(i int) {
	t.cursor = 0
	if i >= 0 && i < len(t.items) {
		if pos, ok := t.rowOf(i); ok {
			t.cursor = pos
		}
	}
	t.clamp()
}

// Remove drops the items whose keys are in gone. The cursor stays on its
// row, or moves to the next one left when its row went.
func (t *Table[V]) Remove(gone map[string]bool) {
	kept := make([]V, 0, len(t.items))
	var marks []bool
	sel, keptSel := t.selectedItem(), -1
	t.nMarked = 0
	sorted := 0
	for i, it := range t.items {
		if i == sel {
			keptSel = len(kept)
		}
		if gone[t.key(it)] {
			continue
		}
		if i < t.sorted {
			sorted++ // the rows kept stay in their order
		}
		kept = append(kept, it)
		if i < len(t.marked) && t.marked[i] {
			marks = append(marks, make([]bool, len(kept)-len(marks))...)
			marks[len(kept)-1] = true
			t.nMarked++
		}
	}
	t.items, t.marked = kept, marks
	t.sorted, t.sorting = sorted, false
	t.sortGen++ // a sort in flight sorted the rows before the deletion
	t.refilter()
	if keptSel >= 0 {
		t.cursor, _ = t.rowOf(keptSel) // the next row shown, when it is hidden or gone
		t.clamp()
	}
}

func (t *Table[V]) refilter() {
	t.hidden = -1
	if t.query == "" {
		t.visible = nil
	} else {
		t.visible = filterIndices(t.items, t.query, t.match)
	}
	t.clamp()
}

// Len is the number of rows passing the filter; Loaded the number loaded.
func (t *Table[V]) Len() int {
	if t.visible == nil {
		return len(t.items)
	}
	return len(t.visible)
}

func (t *Table[V]) Loaded() int { return len(t.items) }

// Items are the loaded items in load order, for reading only (the `:`
// line completes names from them).
func (t *Table[V]) Items() []V { return t.items }

// More reports whether the source has pages not loaded yet.
func (t *Table[V]) More() bool { return t.more }

// At is the item shown in row i (0 is the first row passing the filter).
func (t *Table[V]) At(i int) V { return t.items[t.itemAt(i)] }

// Window is the range [start, end) of the rows on screen.
func (t *Table[V]) Window() (start, end int) {
	return t.offset, min(t.offset+t.rowsHeight(), t.Len())
}

// Cursor is the row under the cursor.
func (t *Table[V]) Cursor() int { return t.cursor }

// Columns are the table's columns, hidden ones included.
func (t *Table[V]) Columns() []Column { return t.cols }

// Query is the active filter, lower-case; "" when unfiltered.
func (t *Table[V]) Query() string { return t.query }

// itemAt is the index into items of row i.
func (t *Table[V]) itemAt(i int) int {
	if t.visible == nil {
		return i
	}
	return int(t.visible[i])
}

// Selected is the item under the cursor.
func (t *Table[V]) Selected() (V, bool) {
	if t.Len() == 0 {
		var zero V
		return zero, false
	}
	return t.At(t.cursor), true
}

// WantsMore reports whether the next page should be fetched now: the cursor
// is near (or wants to go past) the end of what is loaded, every page was
// asked for, or a refresh has not reached the selected row again yet. A
// filter says it covers the loaded pages and loads more only on G: one
// matching few rows would otherwise load every page silently.
func (t *Table[V]) WantsMore() bool {
	nearEnd := t.query == "" && t.cursor >= t.Len()-2*t.rowsHeight()
	return t.more && (nearEnd || t.ahead > 0 || t.toEnd || t.reloading())
}

// LoadingAll reports whether G is fetching every remaining page.
func (t *Table[V]) LoadingAll() bool { return t.more && t.toEnd }

// reloading reports whether a refresh is loading pages again up to the row
// that was selected.
func (t *Table[V]) reloading() bool {
	return t.more && t.restore != "" && len(t.items) < t.restoreUpTo
}

// StopLoading cancels G's fetching of every page, or a refresh's reloading
// up to the selected row (the page in flight still lands); it reports
// whether there was such a load.
func (t *Table[V]) StopLoading() bool {
	was := t.LoadingAll() || t.reloading()
	t.toEnd, t.restore = false, ""
	return was
}

// Filtering is true while the filter prompt has the keys.
func (t *Table[V]) Filtering() bool { return t.filtering }

// MoveBy moves the cursor by n rows. Past the loaded rows of a partly
// loaded list it remembers how far it wanted to go and gets there as the
// next pages land, so a fast page-down burst does not stop at a page edge.
func (t *Table[V]) MoveBy(n int) {
	t.restore, t.toEnd = "", false
	if n < 0 {
		t.ahead = 0
	}
	t.cursor += t.ahead + n
	t.ahead = 0
	t.overshoot()
	t.clamp()
}

// overshoot keeps the part of a move beyond the loaded rows in ahead.
func (t *Table[V]) overshoot() {
	if last := max(t.Len()-1, 0); t.more && t.query == "" && t.cursor > last {
		t.ahead = t.cursor - last
	}
}

func (t *Table[V]) clamp() {
	n := t.Len()
	t.cursor = min(max(t.cursor, 0), max(n-1, 0))
	h := t.rowsHeight()
	if t.cursor < t.offset {
		t.offset = t.cursor
	}
	if t.cursor >= t.offset+h {
		t.offset = t.cursor - h + 1
	}
	t.offset = min(max(t.offset, 0), max(n-h, 0))
}

// Marking.

// IsMarked reports whether the row with key k is marked.
func (t *Table[V]) IsMarked(k string) bool {
	if t.allMarked {
		return !t.unmarked[k]
	}
	for i := range t.marked {
		if t.marked[i] && t.key(t.items[i]) == k {
			return true
		}
	}
	return false
}

// isMarkedAt reports whether items[i] is marked.
func (t *Table[V]) isMarkedAt(i int) bool {
	if t.allMarked {
		return !t.unmarked[t.key(t.items[i])]
	}
	return i < len(t.marked) && t.marked[i]
}

// setMark marks or unmarks items[i] (explicit marks).
func (t *Table[V]) setMark(i int, on bool) {
	if on == t.isMarkedAt(i) {
		return
	}
	if len(t.marked) <= i {
		t.marked = append(t.marked, make([]bool, len(t.items)-len(t.marked))...)
	}
	t.marked[i] = on
	if on {
		t.nMarked++
	} else {
		t.nMarked--
	}
}

// ToggleMark marks or unmarks the row under the cursor.
func (t *Table[V]) ToggleMark() {
	i := t.selectedItem()
	if i < 0 {
		return
	}
	t.hidden = -1
	if t.allMarked {
		k := t.key(t.items[i])
		t.unmarked[k] = !t.unmarked[k]
		if !t.unmarked[k] {
			delete(t.unmarked, k)
		}
		return
	}
	t.setMark(i, !t.isMarkedAt(i))
}

// ToggleShown marks every row shown — those the filter passes, or every
// loaded row when there is no filter — or, when all of them are marked
// already, unmarks them. It reports how many rows changed and whether they
// are now marked. Rows the filter hides keep their marks.
func (t *Table[V]) ToggleShown() (n int, marked bool) {
	t.hidden = -1
	if t.allMarked { // "every row" is on: this switches it off
		t.ToggleMarkAll()
		return 0, false
	}
	n = t.Len()
	for r := range n {
		if !t.isMarkedAt(t.itemAt(r)) {
			marked = true
			break
		}
	}
	for r := range n {
		t.setMark(t.itemAt(r), marked)
	}
	return n, marked
}

// ToggleMarkAll switches "every row of the source" marking on or off. It
// reports whether it is now on; the view then counts the source.
func (t *Table[V]) ToggleMarkAll() bool {
	t.allMarked = !t.allMarked
	t.unmarked, t.marked, t.nMarked, t.hidden = map[string]bool{}, nil, 0, -1
	if !t.allMarked {
		t.allCount = -1
	}
	return t.allMarked
}

// SetAllCount records how many rows the source has (for mark-all).
func (t *Table[V]) SetAllCount(n int) { t.allCount = n }

// AllMarked reports mark-all mode and a copy of the rows it leaves out (a
// copy: a deletion's goroutine reads it while the table may change).
func (t *Table[V]) AllMarked() (bool, map[string]bool) { return t.allMarked, maps.Clone(t.unmarked) }

// MarkedCount is how many rows are marked; -1 while mark-all is counting.
func (t *Table[V]) MarkedCount() int {
	if t.allMarked {
		if t.allCount < 0 {
			return -1
		}
		return max(t.allCount-len(t.unmarked), 0)
	}
	return t.nMarked
}

// Marked returns the keys marked among loaded rows (explicit marks).
func (t *Table[V]) Marked() []string {
	out := make([]string, 0, t.nMarked)
	for i, on := range t.marked {
		if on {
			out = append(out, t.key(t.items[i]))
		}
	}
	return out
}

// HiddenMarks counts marked loaded rows that the filter hides.
func (t *Table[V]) HiddenMarks() int {
	if t.query == "" || t.allMarked || t.nMarked == 0 {
		return 0
	}
	if t.hidden < 0 {
		shown := 0
		for _, i := range t.visible {
			if t.isMarkedAt(int(i)) {
				shown++
			}
		}
		t.hidden = t.nMarked - shown
	}
	return t.hidden
}

// Update handles the table's keys and its filter messages. It returns
// handled=false for keys it does not own, so the view can act on them.
func (t *Table[V]) Update(msg tea.Msg) (cmd tea.Cmd, handled bool) {
	k := t.env.Keys
	switch msg := msg.(type) {
	case filterTick:
		if msg.tag != t.filterTag {
			return nil, true
		}
		items, query, match, tag, route := t.items, t.query, t.match, t.filterTag, t.env.Route
		if query == "" {
			t.setVisible(nil)
			return nil, true
		}
		return func() tea.Msg {
			return route(filterDone{tag: tag, query: query, scanned: len(items), visible: filterIndices(items, query, match)})
		}, true
	case filterDone:
		if msg.tag != t.filterTag || msg.query != t.query {
			return nil, true
		}
		vis := msg.visible
		for i := msg.scanned; i < len(t.items); i++ { // pages that arrived meanwhile
			if t.match(t.items[i], t.query) {
				vis = append(vis, int32(i))
			}
		}
		t.offset = 0
		t.setVisible(vis)
		return nil, true
	case sortDone[V]:
		t.applySort(msg)
		return nil, true
	case tea.MouseClickMsg:
		return nil, t.click(msg.Mouse())
	case tea.PasteMsg:
		if !t.filtering {
			return nil, false
		}
		var c tea.Cmd
		t.input, c = t.input.Update(msg)
		return tea.Batch(c, t.setQuery(t.input.Value())), true
	case tea.KeyPressMsg:
		if t.filtering {
			switch msg.String() {
			case "enter":
				t.filtering = false
				t.input.Blur()
				return nil, true
			case "esc":
				t.filtering = false
				t.input.Blur()
				t.input.SetValue("")
				return t.setQuery(""), true
			}
			var c tea.Cmd
			t.input, c = t.input.Update(msg)
			return tea.Batch(c, t.setQuery(t.input.Value())), true
		}
		h := t.rowsHeight()
		switch {
		case k.Up.Matches(msg):
			t.MoveBy(-1)
		case k.Down.Matches(msg):
			t.MoveBy(1)
		case k.PageUp.Matches(msg):
			t.MoveBy(-h)
		case k.PageDown.Matches(msg):
			t.MoveBy(h)
		case k.Top.Matches(msg):
			t.restore, t.toEnd, t.ahead = "", false, 0
			t.cursor = 0
			t.clamp()
		case k.Bottom.Matches(msg):
			t.restore, t.ahead = "", 0
			t.cursor, t.toEnd = t.Len()-1, t.more // the true end: the rest loads first
			t.clamp()
		case msg.String() == "esc" && (t.LoadingAll() || t.reloading()):
			t.StopLoading()
			return t.env.Flash(fmt.Sprintf("stopped loading: %s rows loaded, more on scroll", theme.Count(len(t.items)))), true
		case k.Sort != nil && k.Sort.Matches(msg):
			return t.SortBy(t.nextSortColumn(), false), true
		case k.SortReverse != nil && k.SortReverse.Matches(msg):
			if t.sortCol < 0 {
				return t.SortBy(t.nextSortColumn(), true), true
			}
			return t.SortBy(t.sortCol, !t.sortDesc), true
		case k.Filter.Matches(msg):
			t.filtering = true
			t.input.SetValue(t.query)
			t.input.CursorEnd()
			t.clamp()
			return t.input.Focus(), true
		case msg.String() == "esc" && t.query != "":
			t.input.SetValue("")
			return t.setQuery(""), true
		default:
			return nil, false
		}
		return nil, true
	}
	return nil, false
}

// ClearFilter drops an active filter; it reports whether there was one, so
// esc clears a filter before it closes the view.
func (t *Table[V]) ClearFilter() bool {
	if t.query == "" {
		return false
	}
	t.input.SetValue("")
	t.setQuery("")
	return true
}

// setQuery changes the filter and schedules a debounced run.
func (t *Table[V]) setQuery(q string) tea.Cmd {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == t.query {
		return nil
	}
	t.query, t.hidden = q, -1
	t.filterTag++
	tag, route := t.filterTag, t.env.Route
	if q == "" {
		t.setVisible(nil)
		return nil
	}
	return tea.Tick(filterDebounce, func(time.Time) tea.Msg { return route(filterTick{tag: tag}) })
}

// filterIndices is the filter itself; it runs inside a Cmd.
func filterIndices[V any](items []V, q string, match func(V, string) bool) []int32 {
	out := make([]int32, 0, 64)
	for i := range items {
		if match(items[i], q) {
			out = append(out, int32(i))
		}
	}
	return out
}

// ContainsFold reports whether s contains the lower-case query q, ignoring
// ASCII case without allocating.
func ContainsFold(s, q string) bool {
	n := len(q)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != q[j] {
				break
			}
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// Meta is the "filtered/total" summary with marks.
func (t *Table[V]) Meta() string {
	total := fmt.Sprint(len(t.items))
	if t.more {
		total += "+"
	}
	s := fmt.Sprintf("%d/%s", t.Len(), total)
	if t.query != "" {
		s += fmt.Sprintf("  filter %q", t.query)
	}
	switch n := t.MarkedCount(); {
	case t.allMarked && n < 0:
		s += "  all marked (counting…)"
	case t.allMarked:
		s += fmt.Sprintf("  all %d marked", n)
	case n > 0:
		s += fmt.Sprintf("  %d marked", n)
		if h := t.HiddenMarks(); h > 0 {
			s += fmt.Sprintf(" (%d hidden by the filter)", h)
		}
	}
	s += t.sortMeta()
	switch {
	case t.LoadingAll():
		s += fmt.Sprintf("  loading every page: %s loaded… (esc stops)", theme.Count(len(t.items)))
	case t.reloading():
		s += fmt.Sprintf("  reloading up to the selected row: %s of %s… (esc stops)", theme.Count(len(t.items)), theme.Count(t.restoreUpTo))
	case t.more && t.query != "":
		s += "  the filter covers the loaded pages only: G loads the rest"
	case t.more:
		s += "  more on scroll"
	}
	return s
}

// View renders the filter line, the column titles, the visible rows and the
// meta line: exactly the table's height, each line exactly its width.
func (t *Table[V]) View() string {
	st := t.env.Styles
	widths := t.colWidths()
	var b strings.Builder
	b.Grow((t.width + 16) * t.height)
	if t.filtering {
		b.WriteString(theme.Fit(st.Input(t.input).View(), t.width))
		b.WriteByte('\n')
	} else if t.query != "" {
		scope := ""
		if t.more {
			scope = fmt.Sprintf("  searched the %s loaded rows only", theme.Count(len(t.items)))
		}
		b.WriteString(st.Muted.Render(theme.Fit("/"+t.query+scope+"  (/ to edit, esc to clear)", t.width)))
		b.WriteByte('\n')
	}
	titles := make([]string, len(t.cols))
	for i, c := range t.cols {
		titles[i] = c.Title
		if i == t.sortCol {
			titles[i] += sortArrow(t.sortDesc)
		}
	}
	b.WriteString(st.TableHeader.Render(t.row("  ", titles, widths)))
	h := t.rowsHeight()
	n := t.Len()
	for r := 0; r < h; r++ {
		b.WriteByte('\n')
		i := t.offset + r
		if i >= n {
			b.WriteString(strings.Repeat(" ", t.width))
			continue
		}
		it := t.At(i)
		mark := "  "
		if t.isMarkedAt(t.itemAt(i)) {
			mark = "● "
		}
		var line string
		switch {
		case i == t.cursor:
			line = st.Selected.Render(t.row(mark, t.cells(it), widths))
		case mark != "  ":
			line = st.Marked.Render(t.row(mark, t.cells(it), widths))
		default: // only a plain row colours its status: a style inside the
			// cursor's would end its background mid-row
			line = t.styledRow(mark, t.cells(it), widths)
		}
		b.WriteString(line)
	}
	b.WriteByte('\n')
	meta := t.Meta()
	if n == 0 && !t.more {
		meta = "nothing to show  " + meta
	}
	b.WriteString(st.Muted.Render(theme.Fit(meta, t.width)))
	return b.String()
}

// colWidths sizes the columns; a hidden column gets width -1.
func (t *Table[V]) colWidths() []int {
	fixed, flex := 2, 0
	for _, c := range t.cols {
		if t.width < c.MinTable {
			continue
		}
		fixed += c.Width + 1
		if c.Width == 0 {
			flex += max(c.Weight, 1)
		}
	}
	ws := make([]int, len(t.cols))
	spare := max(t.width-fixed, 0)
	for i, c := range t.cols {
		switch {
		case t.width < c.MinTable:
			ws[i] = -1
		case c.Width == 0:
			ws[i] = max(spare*max(c.Weight, 1)/max(flex, 1), 4)
			if c.MaxWidth > 0 {
				ws[i] = min(ws[i], c.MaxWidth)
			}
		default:
			ws[i] = c.Width
		}
	}
	return ws
}

// row lays out cells in columns, exactly t.width wide.
func (t *Table[V]) row(prefix string, cells []string, widths []int) string {
	return t.layout(prefix, cells, widths, false)
}

// statusCell is a status cell (fitted to its column) in its colour.
func (t *Table[V]) statusCell(c string) string {
	st := t.env.Styles
	if p := reflect.ValueOf(st.StatusCells).Pointer(); p != t.statusFor || t.statusCells == nil {
		t.statusCells, t.statusFor = map[string]string{}, p // a new palette (the background changed)
	}
	if r, ok := t.statusCells[c]; ok {
		return r
	}
	r := c
	if style, ok := st.Status(strings.TrimSpace(c)); ok {
		r = style.Render(c)
	}
	if len(t.statusCells) < 64 {
		t.statusCells[c] = r
	}
	return r
}

// styledRow is row with the status columns coloured by their values.
func (t *Table[V]) styledRow(prefix string, cells []string, widths []int) string {
	return t.layout(prefix, cells, widths, true)
}

func (t *Table[V]) layout(prefix string, cells []string, widths []int, styled bool) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i, w := range widths {
		if w < 0 {
			continue
		}
		c := ""
		if i < len(cells) {
			c = cells[i]
		}
		c = theme.Fit(c, w)
		if styled && t.cols[i].Status {
			c = t.statusCell(c)
		}
		b.WriteString(c)
		b.WriteByte(' ')
	}
	return theme.Fit(b.String(), t.width)
}
