package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

// BenchmarkFind1M is :find on a DPS of 1,000,000 registration records (the
// in-process emulator, over TLS): the clock runs from enter to the rendered
// screen showing the record, through the root model as the Program drives
// it. The ID is typed before the clock starts.
func BenchmarkFind1M(b *testing.B) {
	target, emu := startEmulator(b, 0)
	ctx := context.Background()
	start := time.Now()
	if err := emu.SeedRegistrations(ctx, "million", 1_000_000); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded 1,000,000 records in %s", time.Since(start).Round(time.Millisecond))
	m := New(ctx, Options{Target: target})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	ids := []string{"million-0000000", "million-0499999", "million-0999999", "million-0777777"}
	var worst time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		id := ids[i%len(ids)]
		i++
		m.Update(press(":"))
		typeText(func(msg tea.Msg) tea.Cmd { _, c := m.Update(msg); return c }, "find "+id)
		b.StartTimer()
		began := time.Now()
		_, cmd := m.Update(press("enter"))
		m.Update(cmd()) // the one GET /registrations/{id}
		if !strings.Contains(m.View().Content, `"registrationId": "`+id+`"`) {
			b.Fatalf("%s is not on screen:\n%s", id, m.View().Content)
		}
		worst = max(worst, time.Since(began))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}
