package table

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// sortDone is a sort's result, made off the event loop: items are the first
// n items (those loaded when it started) in the new order, moved[i] the new
// place of the item at i; visible is the filter over them, for query.
type sortDone[V any] struct {
	gen     int
	col     int
	desc    bool
	items   []V
	moved   []int32
	query   string
	visible []int32
}

func (sortDone[V]) tableMsg() {}

// SortBy sorts the loaded rows by column col off the event loop: the Cmd
// returns them in their new order and the table takes them in Update,
// unless the rows changed meanwhile (a newer sort, a refresh, a deletion).
func (t *Table[V]) SortBy(col int, desc bool) tea.Cmd {
	if col < 0 || col >= len(t.cols) {
		return nil
	}
	t.sortGen++
	t.sorting = true
	// items[:n] never change in place (Append writes past them, Remove and
	// a sort build new slices), so the Cmd may read them.
	gen, items, cells, match, query, route := t.sortGen, t.items, t.cells, t.match, t.query, t.env.Route
	cell := func(v V) string {
		if cs := cells(v); col < len(cs) {
			return cs[col]
		}
		return ""
	}
	if one := t.sortCell; one != nil {
		cell = func(v V) string { return one(v, col) }
	}
	return func() tea.Msg {
		perm := sortOrder(items, desc, cell)
		// Room for the pages that land before the result does.
		sorted := make([]V, len(items), len(items)+len(items)/8+64)
		moved := make([]int32, len(items))
		var vis []int32
		if query != "" {
			vis = make([]int32, 0, 64)
		}
		for j, i := range perm {
			sorted[j] = items[i]
			moved[i] = int32(j)
			if query != "" && match(items[i], query) {
				vis = append(vis, int32(j))
			}
		}
		return route(sortDone[V]{gen: gen, col: col, desc: desc, items: sorted, moved: moved, query: query, visible: vis})
	}
}

// SetSortCell gives the table the text of one cell (what cells would put
// in column col), or any text that sorts as that cell does, so a sort of
// many rows makes only the keys it sorts by.
func (t *Table[V]) SetSortCell(cell func(v V, col int) string) { t.sortCell = cell }

// sortOrder is the order of items by the text of their cells: each cell is
// made and read once; equal cells keep their load order.
func sortOrder[V any](items []V, desc bool, cell func(V) string) []int32 {
	type entry struct {
		key sortKey
		i   int32
	}
	entries := make([]entry, len(items))
	for i := range items {
		entries[i] = entry{key: keyOf(cell(items[i])), i: int32(i)}
	}
	// pdqsort with the load order as the tie-break: stable, and faster
	// than a stable sort.
	slices.SortFunc(entries, func(a, b entry) int {
		c := a.key.compare(b.key)
		if desc {
			c = -c
		}
		if c == 0 {
			return cmp.Compare(a.i, b.i)
		}
		return c
	})
	perm := make([]int32, len(items))
	for j, e := range entries {
		perm[j] = e.i
	}
	return perm
}

// sortKey is a cell as it sorts: counts ("1,234", "100+") by their value,
// anything else as text.
type sortKey struct {
	text  string
	num   string // the count's digits, no leading zeros or commas
	isNum bool
}

func keyOf(s string) sortKey {
	num, ok := digits(s)
	return sortKey{text: s, num: num, isNum: ok}
}

func (a sortKey) compare(b sortKey) int {
	if a.isNum && b.isNum {
		if c := cmp.Compare(len(a.num), len(b.num)); c != 0 {
			return c
		}
		return cmp.Compare(a.num, b.num)
	}
	return cmp.Compare(a.text, b.text)
}

// digits is the number a count cell shows, as its digits without leading
// zeros, commas or a trailing "+"; ok is false for any other text.
func digits(s string) (string, bool) {
	s, _ = strings.CutSuffix(s, "+")
	if s == "" {
		return "", false
	}
	var buf []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if c != '0' || len(buf) > 0 {
				buf = append(buf, c)
			}
		case c == ',' && i > 0:
		default:
			return "", false
		}
	}
	return string(buf), true
}

// applySort takes a sort's result: the sorted rows first, rows loaded since
// after them as they came; marks, the filter and the cursor stay on their
// items. Its work on the event loop is in the rows loaded since and the
// marks, not the sorted rows.
func (t *Table[V]) applySort(msg sortDone[V]) {
	if msg.gen != t.sortGen {
		return // the rows changed since: this order is of rows no longer there
	}
	t.sorting = false
	n := len(msg.items)
	newIndex := func(i int) int {
		if i < n {
			return int(msg.moved[i])
		}
		return i
	}
	sel := t.selectedItem()
	if t.nMarked > 0 {
		marks := make([]bool, len(t.items))
		for i, on := range t.marked {
			if on {
				marks[newIndex(i)] = true
			}
		}
		t.marked = marks
	}
	t.items = append(msg.items, t.items[n:]...)
	t.sortCol, t.sortDesc, t.sorted = msg.col, msg.desc, n
	t.hidden = -1
	if t.query != "" {
		t.filterTag++ // a filter result in flight counts rows by the old order
		if msg.query == t.query {
			vis := msg.visible
			for i := n; i < len(t.items); i++ {
				if t.match(t.items[i], t.query) {
					vis = append(vis, int32(i))
				}
			}
			t.visible = vis
		} else {
			t.visible = filterIndices(t.items, t.query, t.match)
		}
	}
	if sel >= 0 {
		t.reselect(newIndex(sel))
	}
}

// nextSortColumn is the shown column after the sorted one, round.
func (t *Table[V]) nextSortColumn() int {
	ws := t.colWidths()
	for k := 1; k <= len(t.cols); k++ {
		if c := (t.sortCol + k) % len(t.cols); ws[c] >= 0 {
			return c
		}
	}
	return -1
}

// Sorted reports the column the rows are sorted by (-1: load order) and
// whether it is descending.
func (t *Table[V]) Sorted() (col int, desc bool) { return t.sortCol, t.sortDesc }

func sortArrow(desc bool) string {
	if desc {
		return " ↓"
	}
	return " ↑"
}

// sortMeta says what the sort covers: the rows loaded when it ran.
func (t *Table[V]) sortMeta() string {
	if t.sorting {
		return "  sorting…"
	}
	if t.sortCol < 0 {
		return ""
	}
	s := fmt.Sprintf("  sorted by %s%s: %s loaded rows", t.cols[t.sortCol].Title, sortArrow(t.sortDesc), theme.Count(t.sorted))
	if late := len(t.items) - t.sorted; late > 0 {
		s += fmt.Sprintf(", %s loaded since follow unsorted", theme.Count(late))
	}
	return s
}

// click selects the row under a left click at m (Y counted from the top of
// the owning view's body, which the table ends); it reports whether the
// click was on a row.
func (t *Table[V]) click(m tea.Mouse) bool {
	if t.env.BodyHeight == nil || m.Button != tea.MouseLeft {
		return false
	}
	y := m.Y - (t.env.BodyHeight() - t.height) - 1 // the column titles
	if t.filtering || t.query != "" {
		y-- // the filter line
	}
	if y < 0 || y >= t.rowsHeight() || t.offset+y >= t.Len() {
		return false
	}
	t.restore, t.toEnd, t.ahead = "", false, 0
	t.cursor = t.offset + y
	t.clamp()
	return true
}
