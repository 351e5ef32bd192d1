package tui

import (
	"context"
	"strconv"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/fleet"
)

// BenchmarkFleetDashboard feeds the engine's tally 1,000 device outcomes a
// second (each with its four steps, one in a hundred failed, one in fifty
// throttled) for a few seconds while the whole console renders the
// dashboard at its frame rate, and reports the share of one core the
// frames take: (Board + Update + View) time ÷ wall time. The bar:
// ≤ 5 % at 1,000 updates/s.
func BenchmarkFleetDashboard(b *testing.B) {
	const perSecond, seconds = 1000, 4
	for range b.N {
		m := New(context.Background(), Options{Target: &Target{Name: "emulator (bench)", IDScope: "0ne00000A0A"}, Start: "derive"})
		m.Update(tea.WindowSizeMsg{Width: 120, Height: 35})
		m.Update(press("esc"))
		v := newFleetView(m.c, "plant-a")
		m.pushForTest(v)
		spec := fleet.Spec{Prefix: "sim", Start: 1, Count: perSecond * seconds, Transport: "https"}
		live, feed := fleet.NewFeed(spec)
		v.running, v.live, v.start = true, live, fleetStart{spec: spec}

		stop := make(chan struct{})
		fed := make(chan int)
		go func() { // 10 devices every 10 ms
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			n := 0
			for n < spec.Count {
				select {
				case <-stop:
					fed <- n
					return
				case <-tick.C:
				}
				for range perSecond / 100 {
					now := time.Now()
					for _, st := range []device.Step{device.StepRequestSent, device.StepAccepted, device.StepPollSent, device.StepPolled} {
						feed.Step(n, device.Event{Time: now, Step: st, HTTPStatus: 202})
					}
					switch {
					case n%100 == 7:
						feed.NotAssigned(n, fleet.OutcomeError, "HTTP 401 401002")
					default:
						if n%50 == 3 {
							feed.Throttled(time.Second)
						}
						feed.Assigned(n, "hub-"+strconv.Itoa(n%3)+".azure-devices.net", time.Second+time.Duration(n%400)*time.Millisecond)
					}
					n++
				}
			}
			fed <- n
		}()

		var busy time.Duration
		frames := 0
		start := time.Now()
		for time.Since(start) < seconds*time.Second {
			time.Sleep(frameEvery)
			t0 := time.Now()
			board := live.Board() // in the console the frame's Cmd reads it, off the loop: counted all the same
			m.Update(routed{to: v.vid, msg: fleetFrameMsg{gen: v.gen, board: board}})
			_ = m.View()
			busy += time.Since(t0)
			frames++
		}
		wall := time.Since(start)
		close(stop)
		n := <-fed
		b.ReportMetric(100*busy.Seconds()/wall.Seconds(), "%cpu")
		b.ReportMetric(float64(busy.Microseconds())/float64(frames), "µs/frame")
		b.ReportMetric(float64(n)/wall.Seconds(), "updates/s")
		if v.board.Done == 0 {
			b.Fatalf("no device reached the dashboard (%d fed)", n)
		}
	}
}
