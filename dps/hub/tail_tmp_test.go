package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

func BenchmarkTmpTail(b *testing.B) {
	reg, ids := methodDevices(b)
	ctx := context.Background()
	payload := json.RawMessage(`{"delay":1}`)
	const rate = 2000
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	interval := time.Second / rate
	b.ResetTimer()
	start := time.Now()
	for k := range b.N {
		due := start.Add(time.Duration(k) * interval)
		time.Sleep(time.Until(due))
		lag := time.Since(due)
		wg.Add(1)
		go func() {
			defer wg.Done()
			reg.InvokeMethod(ctx, ids[k%len(ids)], "reboot", payload, nil)
			lat[k] = time.Since(due)
			if lat[k] > 8*time.Millisecond {
				fmt.Printf("slow k=%d at %v lat %v dispatch-lag %v\n", k, due.Sub(start).Round(time.Millisecond), lat[k].Round(100*time.Microsecond), lag.Round(100*time.Microsecond))
			}
		}()
	}
	wg.Wait()
	var st debug.GCStats
	st.PauseQuantiles = nil
	debug.ReadGCStats(&st)
	for _, e := range st.PauseEnd {
		if e.After(start) {
			fmt.Printf("gc pause end at %v\n", e.Sub(start).Round(time.Millisecond))
		}
	}
}
