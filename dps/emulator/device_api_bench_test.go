package emulator

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// BenchmarkDeviceRegistration is complete HTTPS registrations (PUT register
// and the poll that returns the committed, assigned record) from 200
// concurrent simulated devices, each on its own TLS connection (devices are
// not multiplexed over shared HTTP/2 connections). Assignment delay 0;
// hashed allocation over 2 hubs; every commit fsynced (synchronous=FULL).
//   - max: each device registers a fresh registration ID as soon as its last
//     one finished (closed loop): the throughput ceiling. Latency here is
//     mostly queueing (200 in flight / throughput).
//   - paced-500/s: each device registers every 400 ms (500/s offered);
//     latency is measured from the scheduled start, so falling behind shows.
//   - new-tls-each: as max, but every registration opens a new TLS
//     connection (full handshake, client side included).
func BenchmarkDeviceRegistration(b *testing.B) {
	b.Run("max", func(b *testing.B) { benchRegistrations(b, 0, false) })
	b.Run("paced-500/s", func(b *testing.B) { benchRegistrations(b, 400*time.Millisecond, false) })
	b.Run("new-tls-each", func(b *testing.B) { benchRegistrations(b, 0, true) })
}

func benchRegistrations(b *testing.B, every time.Duration, handshakeEach bool) {
	const devices = 200
	e := startTest(b, Options{Seed: "none"})
	gk := createGroup(b, e, map[string]any{"enrollmentGroupId": "bench", "allocationPolicy": "hashed"})
	pool := e.CertPool()
	lat := make([]time.Duration, b.N)
	var failed atomic.Int64
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range devices {
		wg.Go(func() {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			defer tr.CloseIdleConnections()
			// Device w does registrations w, w+200, ...; when paced, the
			// k-th is due at start + w*every/200 + k*every.
			for k, i := 0, w; i < b.N; k, i = k+1, i+devices {
				due := time.Now()
				if every > 0 {
					due = start.Add(time.Duration(w)*every/devices + time.Duration(k)*every)
					time.Sleep(time.Until(due))
				}
				if handshakeEach {
					tr.CloseIdleConnections()
				}
				rid := fmt.Sprintf("bench-%d-%08d", b.N, i)
				key, _ := keys.DeriveDeviceKey(gk, rid)
				d := &rawDevice{t: b, host: e.Env().DeviceEndpoint, scope: e.idScope, rid: rid, key: key,
					client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, sr: srNode, skn: "registration", expires: time.Hour}
				st := d.register(`{"registrationId":"` + rid + `"}`)
				lat[i] = time.Since(due)
				if st.Status != dps.StatusAssigned {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d registrations did not end assigned", n)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "registrations/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	// CPU (client and server, both in this process) per registration: on a
	// shared machine this shows the capacity when wall-clock rates cannot.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/registration")
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
