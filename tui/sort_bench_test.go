package tui

import (
	"math/rand/v2"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/tui/components/table"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
)

// shuffledRecordTable is a record table of n records loaded in random
// order, with distinct update times, so a sort has real work to do.
func shuffledRecordTable(b *testing.B, n int) *table.Table[record] {
	c := testCommon(b, 120, 35)
	c.Styles = theme.NewStyles(true, false)
	recs := makeRecords(n)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	for i := range recs {
		recs[i].updated = testUpdated.Add(time.Duration(rng.IntN(86400)) * time.Second)
	}
	tb := newRecordTable(c, 1)
	tb.SetSize(c.Width, c.Height)
	tb.Append(recs, false)
	return tb
}

// BenchmarkSortRecords100k sorts 100,000 loaded records by a column: the
// Cmd's work off the event loop (ms-cmd) and taking its result in Update
// on the loop (ms-apply); ns/op is both.
func BenchmarkSortRecords100k(b *testing.B) {
	for _, col := range []struct {
		name string
		i    int
	}{{"id", 0}, {"status", 3}, {"updated", 5}} {
		b.Run(col.name, func(b *testing.B) {
			tb := shuffledRecordTable(b, 100_000)
			var inCmd, inApply time.Duration
			desc := false
			for b.Loop() {
				desc = !desc
				start := time.Now()
				msg := tb.SortBy(col.i, desc)().(routed).msg
				mid := time.Now()
				tb.Update(msg)
				inCmd += mid.Sub(start)
				inApply += time.Since(mid)
			}
			if c, _ := tb.Sorted(); c != col.i {
				b.Fatal("the sort was not applied")
			}
			b.ReportMetric(float64(inCmd.Microseconds())/1000/float64(b.N), "ms-cmd")
			b.ReportMetric(float64(inApply.Microseconds())/1000/float64(b.N), "ms-apply")
		})
	}
}

// BenchmarkSortedKeystroke100k is one keystroke (a cursor move and the
// render of the window) on a sorted table of 100,000 records.
func BenchmarkSortedKeystroke100k(b *testing.B) {
	tb := shuffledRecordTable(b, 100_000)
	tb.Update(tb.SortBy(0, false)().(routed).msg)
	tb.MoveBy(50_000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := tea.KeyPressMsg{Code: tea.KeyDown}
		if i%2 == 1 {
			k = tea.KeyPressMsg{Code: tea.KeyUp}
		}
		tb.Update(k)
		_ = tb.View()
	}
}

// recordCell must say what recordCells says, column by column.
func TestRecordCellIsRecordCells(t *testing.T) {
	r := record{id: "a", device: "b", hub: "c", status: "assigned", sub: "initialAssignment", updated: testUpdated, created: testUpdated.Add(-time.Hour), errMsg: "401 no"}
	for col, want := range recordCells(r) {
		if got := recordCell(r, col); got != want {
			t.Errorf("column %d: %q, recordCells says %q", col, got, want)
		}
	}
}

// A time's sort key orders records as their UPDATED text does, "—" last.
func TestTimeKeySortsAsTheStamp(t *testing.T) {
	times := []time.Time{{}, testUpdated, testUpdated.Add(-48 * time.Hour), testUpdated.Add(time.Second)}
	for _, a := range times {
		for _, b := range times {
			if (timeKey(a) < timeKey(b)) != (stampCell(a) < stampCell(b)) {
				t.Errorf("%v vs %v: key and text disagree", a, b)
			}
		}
	}
}
