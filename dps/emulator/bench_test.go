package emulator

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
)

// BenchmarkServiceMixed: parallel clients over real TLS, half PUT (each
// committed before the answer) and half GET of enrollment groups.
func BenchmarkServiceMixed(b *testing.B) {
	e := startTest(b, Options{})
	s := newSvc(b, e)
	const groups = 64
	for i := range groups {
		s.must(200, "PUT", fmt.Sprintf("/enrollmentGroups/bench-%d%s", i, av), symGroup(fmt.Sprintf("bench-%d", i)))
	}
	var puts atomic.Int64
	b.SetParallelism(16) // 16 × GOMAXPROCS concurrent clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("bench-%d", rand.IntN(groups))
			if rand.IntN(2) == 0 {
				s.must(200, "PUT", "/enrollmentGroups/"+id+av, symGroup(id))
				puts.Add(1)
			} else {
				s.must(200, "GET", "/enrollmentGroups/"+id+av, nil)
			}
		}
	})
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(float64(puts.Load())/el.Seconds(), "writes/s")
}

// BenchmarkRegistrationListing pages through 100,000 registration records of
// one group with page size 1000 over TLS: "serve" reads each page's bytes,
// "decode" also decodes every record as a client does.
func BenchmarkRegistrationListing(b *testing.B) {
	e := startTest(b, Options{})
	const n = 100_000
	if err := e.SeedRegistrations(context.Background(), "bench-group", n); err != nil {
		b.Fatal(err)
	}
	s := newSvc(b, e)
	for _, decodeRecords := range []bool{false, true} {
		name := map[bool]string{false: "serve", true: "decode"}[decodeRecords]
		b.Run(name, func(b *testing.B) {
			start := time.Now()
			for range b.N {
				token, total := "", 0
				for {
					resp, body := s.must(200, "POST", "/registrations/bench-group/query"+av, nil, "x-ms-max-item-count", "1000", "x-ms-continuation", token)
					if decodeRecords {
						total += len(decode[[]dps.DeviceRegistrationState](b, body))
					} else {
						total += bytes.Count(body, []byte(`"registrationId"`))
					}
					if token = resp.Header.Get("x-ms-continuation"); token == "" {
						break
					}
				}
				if total != n {
					b.Fatalf("listed %d records, want %d", total, n)
				}
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

func BenchmarkSeedRegistrations(b *testing.B) {
	for range b.N {
		e := startTest(b, Options{})
		if err := e.SeedRegistrations(context.Background(), "g", 100_000); err != nil {
			b.Fatal(err)
		}
	}
}
