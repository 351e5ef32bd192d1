package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
)

// benchDevices is how many devices the device-side benchmarks connect.
const benchDevices = 200

// mqttDevices provisions n devices and connects each to the emulator's hub
// over MQTT; the registry client is the service side.
func mqttDevices(b *testing.B, n int) (*hub.RegistryClient, []*hub.DeviceClient) {
	em, reg, devs, opts := provisioned(b, n)
	clients := make([]*hub.DeviceClient, 0, n)
	for i := range n {
		id := fmt.Sprintf("dev-%02d", i)
		c, err := hub.NewDeviceClient(reg.Host(), id, devs[id], &hub.ClientOptions{ClientOptions: opts, Transport: mqttconn.MQTT, MQTTHost: em.Env().HubMQTTEndpoints[0]})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		clients = append(clients, c)
	}
	return reg, clients
}

// parallelPerDevice runs b.N calls of do over n goroutines; do gets its
// goroutine's number (a device's index when there is one per device).
func parallelPerDevice(b *testing.B, n int, do func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := do(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	// Client and emulator share the process: the CPU cost of an operation
	// whole, the figure that does not depend on the machine's load.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSendEventMQTT is device-to-cloud telemetry over MQTT: 200
// devices, each publishing QoS 1 on its own connection and waiting for the
// PUBACK (the message counted in SQLite).
func BenchmarkSendEventMQTT(b *testing.B) {
	_, clients := mqttDevices(b, benchDevices)
	body := []byte(`{"temperature":21.5}`)
	parallelPerDevice(b, len(clients), func(i int) error { return clients[i].SendEvent(context.Background(), body, nil) })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "messages/s")
}

// BenchmarkReportProperties: 200 devices, each sending reported-property
// patches over MQTT and waiting for the hub's res/204 with the new
// $version (the twin written to SQLite first).
func BenchmarkReportProperties(b *testing.B) {
	_, clients := mqttDevices(b, benchDevices)
	ctx := context.Background()
	for _, c := range clients { // connect and subscribe before the clock runs
		if _, err := c.ReportProperties(ctx, dps.TwinCollection{"seq": 0}); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	parallelPerDevice(b, len(clients), func(i int) error {
		_, err := clients[i].ReportProperties(ctx, dps.TwinCollection{"seq": seq.Add(1), "temperature": 21.5})
		return err
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "patches/s")
}

// BenchmarkDirectMethod is a direct-method round trip: the service calls
// through the hub's REST API, the hub sends the call over the device's MQTT
// connection, the device answers and the hub returns the answer. 200
// devices are connected; in-flight=N runs N callers at once, caller i
// calling devices i, i+N, i+2N, ... in turn, so no device has two calls at
// once and in-flight=200 is each of the 200 devices with one call in
// flight. It reports the latency percentiles of the calls.
func BenchmarkDirectMethod(b *testing.B) {
	reg, clients := mqttDevices(b, benchDevices)
	ctx := context.Background()
	ids := make([]string, len(clients))
	for i, c := range clients {
		ids[i] = fmt.Sprintf("dev-%02d", i)
		if err := c.OnMethod(ctx, func(_ context.Context, m hub.MethodCall) hub.MethodResponse {
			return hub.MethodResponse{Status: 200, Payload: m.Payload}
		}); err != nil {
			b.Fatal(err)
		}
	}
	payload := json.RawMessage(`{"delay":1}`)
	for _, id := range ids { // warm the service side's connections
		if _, err := reg.InvokeMethod(ctx, id, "warm", payload, nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, inFlight := range []int{8, 50, benchDevices} {
		b.Run(fmt.Sprintf("in-flight=%d", inFlight), func(b *testing.B) {
			lat := make([][]time.Duration, inFlight) // by caller: no lock on the clock's path
			turns := make([]int, inFlight)
			parallelPerDevice(b, inFlight, func(caller int) error {
				id := ids[(caller+turns[caller]*inFlight)%len(ids)]
				turns[caller]++
				t0 := time.Now()
				res, err := reg.InvokeMethod(ctx, id, "reboot", payload, nil)
				lat[caller] = append(lat[caller], time.Since(t0))
				if err == nil && (res.Status != 200 || string(res.Payload) != string(payload)) {
					err = fmt.Errorf("answer %+v", res)
				}
				return err
			})
			all := slices.Concat(lat...)
			slices.Sort(all)
			pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
