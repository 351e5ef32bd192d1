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

// BenchmarkMQTTRegistration is complete registrations over MQTT (and MQTT
// over WebSockets) through our device client, from 200 concurrent simulated
// devices, each on its own TLS connection: the register publish and its
// res/202, then the poll and its res/200 with the committed, assigned
// record. Closed loop: each device starts its next registration as soon as
// its last one ended. Same emulator setup as the HTTPS
// BenchmarkDeviceRegistration in dps/emulator: assignment delay 0, hashed
// allocation over 2 hubs, every commit fsynced.
//   - held: each device holds its connection (Session) and registers again
//     over it, as the HTTPS benchmark's devices keep their connection; a
//     DPS MQTT connection belongs to one registration ID, so these are
//     re-registrations of the device's own ID.
//   - new-device-each: every registration is a new device with a new
//     registration ID on a new connection (Client.Register): full TLS
//     handshake, CONNECT/CONNACK, SUBSCRIBE, UNSUBSCRIBE and DISCONNECT
//     each time, as the HTTPS benchmark's new-tls-each.
func BenchmarkMQTTRegistration(b *testing.B) {
	for _, tr := range []device.Transport{device.TransportMQTT, device.TransportMQTTWS} {
		b.Run(string(tr)+"/held", func(b *testing.B) { benchRegistrations(b, tr, true) })
		b.Run(string(tr)+"/new-device-each", func(b *testing.B) { benchRegistrations(b, tr, false) })
	}
}

func benchRegistrations(b *testing.B, tr device.Transport, held bool) {
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
			var s *device.Session
			if held {
				rid := fmt.Sprintf("bench-%d-device-%03d", b.N, w)
				key, _ := keys.DeriveDeviceKey(gk, rid)
				var err error
				if s, err = dc.OpenSession(context.Background(), rid, key, nil); err != nil {
					b.Error(err)
					return
				}
				defer s.Close()
			}
			for i := w; i < b.N; i += devices {
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				var st dps.DeviceRegistrationState
				var err error
				rid := fmt.Sprintf("bench-%d-%08d", b.N, i)
				if held {
					st, err = s.Register(ctx, nil)
				} else {
					key, _ := keys.DeriveDeviceKey(gk, rid)
					st, err = dc.Register(ctx, rid, key, nil)
				}
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
