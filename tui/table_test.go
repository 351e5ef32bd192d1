package tui

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/tui/components/table"
	"github.com/dpsconsole/dpsconsole/tui/components/theme"
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

func newTestTable(t testing.TB, c *Common, n int, more bool) *table.Table[record] {
	tb := newRecordTable(c, 1)
	tb.SetSize(c.Width, c.Height)
	tb.Append(makeRecords(n), more)
	return tb
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

// BenchmarkTableMoveView1M is one keystroke on a table holding 1,000,000
// registration records: a cursor move plus rendering the window.
func BenchmarkTableMoveView1M(b *testing.B) {
	c := testCommon(b, 120, 35)
	c.Styles = theme.NewStyles(true, false)
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
