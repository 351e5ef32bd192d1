package fleet_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/fleet"
)

// BenchmarkFleetHTTPS registers b.N devices against the in-process
// emulator (no assignment delay), each on its own TLS connection, and
// reports registrations a second. Run it with -benchtime 2000x.
func BenchmarkFleetHTTPS(b *testing.B) {
	f := start(b, emulator.Options{})
	cfg := f.config(b, b.N)
	cfg.Concurrency = 256
	b.ResetTimer()
	t0 := time.Now()
	sum, err := fleet.Run(b.Context(), cfg)
	el := time.Since(t0)
	b.StopTimer()
	if err != nil || sum.Assigned != b.N {
		b.Fatalf("%+v, %v", sum, err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "registrations/s")
	b.ReportMetric(float64(sum.Latency.P50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(sum.Latency.P99.Milliseconds()), "p99-ms")
}

// BenchmarkFleetMQTT is BenchmarkFleetHTTPS over MQTT: each device on its
// own MQTT/TLS connection (one CONNECT). Run it with -benchtime 2000x.
func BenchmarkFleetMQTT(b *testing.B) {
	f := start(b, emulator.Options{})
	cfg, _ := f.mqttConfig(b, b.N, "mqtt")
	cfg.Concurrency = 256
	b.ResetTimer()
	t0 := time.Now()
	sum, err := fleet.Run(b.Context(), cfg)
	el := time.Since(t0)
	b.StopTimer()
	if err != nil || sum.Assigned != b.N {
		b.Fatalf("%+v, %v", sum, err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "registrations/s")
	b.ReportMetric(float64(sum.Latency.P50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(sum.Latency.P99.Milliseconds()), "p99-ms")
}

// TestFleetMemoryPerDeviceInFlight holds 200 devices in flight (the
// emulator keeps them assigning) and measures the live heap they add:
// fleet, device client, TLS connection, and the emulator's side of it,
// which runs in this process too.
func TestFleetMemoryPerDeviceInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 200 devices for 2 s")
	}
	const n = 200
	f := start(t, emulator.Options{AssignmentDelay: 2 * time.Second})
	cfg := f.config(t, n)
	cfg.Concurrency = n
	cfg.ProgressEvery = 50 * time.Millisecond
	base := liveHeap()
	var once sync.Once
	var peak uint64
	cfg.Progress = func(s fleet.Snapshot) {
		if s.InFlight == n {
			// Wait for every register to be answered: then each device
			// holds its connection and its poller, nothing in transit.
			once.Do(func() { time.Sleep(500 * time.Millisecond); peak = liveHeap() })
		}
	}
	if _, err := fleet.Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if peak == 0 {
		t.Fatal("the devices were never all in flight at once")
	}
	per := (int64(peak) - int64(base)) / n
	t.Logf("%d bytes of live heap per device in flight (client and emulator sides)", per)
	if per > 256<<10 {
		t.Errorf("%d KiB per device in flight", per>>10)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
