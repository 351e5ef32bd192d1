package inventory_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/inventory"
	"github.com/dpsconsole/dpsconsole/keys"
)

// BenchmarkCount1M counts a DPS of 1,000,000 registration records in four
// groups (400,000 / 300,000 / 200,000 / 100,000): the :quota and `dpsconsole
// quota` engine, over real TLS from the in-process emulator. It reports
// records counted a second, the CPU of client and emulator together, the
// peak of the live heap during the count (sampled every 5 ms: flat means it
// does not grow with the records) and the process's max RSS.
// Run: go test ./dps/inventory -run '^$' -bench Count1M -benchtime 2x -benchmem
func BenchmarkCount1M(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	sizes := []int{400_000, 300_000, 200_000, 100_000}
	total := 0
	for i, n := range sizes {
		id := fmt.Sprintf("bench-%d", i)
		if _, err := f.c.CreateOrUpdateEnrollmentGroup(ctx, dps.EnrollmentGroup{EnrollmentGroupID: id, Attestation: symmetricKey(keys.GenerateKey())}, nil); err != nil {
			b.Fatal(err)
		}
		if err := f.emu.SeedRegistrations(ctx, id, n); err != nil {
			b.Fatal(err)
		}
		total += n
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	peak := sampleHeap()
	cpu0 := cpuTime()
	for b.Loop() {
		counts, err := inventory.Count(ctx, f.c, inventory.Options{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if counts.Records() != total || counts.Groups[0].Records != sizes[0] {
			b.Fatalf("counted %d, want %d", counts.Records(), total)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(total*b.N), "cpu-ns/record")
	b.ReportMetric(float64(peak()-base.HeapInuse)/(1<<20), "peak-heap-growth-MB")
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB")
}

// sampleHeap watches HeapInuse until the returned func is called, which
// gives its peak.
func sampleHeap() func() uint64 {
	var mu sync.Mutex
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			mu.Lock()
			peak = max(peak, m.HeapInuse)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
