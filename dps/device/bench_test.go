package device_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// BenchmarkMQTTRegistration is complete registrations over MQTT through
// device.Client.Register, from 200 concurrent simulated devices: each
// registration is a new device on its own TLS connection (a DPS MQTT
// connection belongs to one registration ID), so every one pays the full
// TLS handshake, CONNECT/CONNACK, SUBSCRIBE, the register publish and its
// res/202, the poll and its res/200, UNSUBSCRIBE and DISCONNECT. Closed
// loop: each device starts the next as soon as its last one ended. Same
// emulator setup as the HTTPS BenchmarkDeviceRegistration in dps/emulator:
// assignment delay 0, hashed allocation over 2 hubs, every commit fsynced.
func BenchmarkMQTTRegistration(b *testing.B) {
	for _, tr := range []device.Transport{device.TransportMQTT, device.TransportMQTTWS} {
		b.Run(string(tr), func(b *testing.B) { benchRegistrations(b, tr) })
	}
}

func benchRegistrations(b *testing.B, tr device.Transport) {
	const devices = 200
	f := startWith(b, emulator.Options{})
	gk := keys.GenerateKey()
	g := dps.EnrollmentGroup{EnrollmentGroupID: "bench", AllocationPolicy: dps.AllocationHashed,
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
			PrimaryKey: dps.Secret(gk.Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}}
	if _, err := f.svc.CreateOrUpdateEnrollmentGroup(context.Background(), g, nil); err != nil {
		b.Fatal(err)
	}
	env := f.em.Env()
	dc, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: f.options, ProvisioningHost: env.DeviceEndpoint,
		Transport: tr, MQTTHost: env.MQTTEndpoint})
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	var failed atomic.Int64
	var firstErr atomic.Value
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range devices {
		wg.Go(func() {
			for i := w; i < b.N; i += devices {
				rid := fmt.Sprintf("bench-%d-%08d", b.N, i)
				key, _ := keys.DeriveDeviceKey(gk, rid)
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				st, err := dc.Register(ctx, rid, key, nil)
				cancel()
				lat[i] = time.Since(t0)
				if err != nil || st.Status != dps.StatusAssigned {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %+v, %v", rid, st.Status, err))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d registrations did not end assigned; first: %v", n, firstErr.Load())
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "registrations/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	// Client and server share the process and its CPU.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/registration")
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
