package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	reportCPU(b, cpu0)
}

// reportCPU reports the process's CPU time since cpu0 per operation: client
// and emulator share the process, so it is an operation's whole cost, the
// figure that depends least on the machine's load.
func reportCPU(b *testing.B, cpu0 time.Duration) {
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
// devices are connected throughout.
//
//   - in-flight=N runs N callers back to back, caller i calling devices i,
//     i+N, i+2N, ... in turn, so no device has two calls at once;
//     in-flight=200 is each device with one call in flight at all times.
//   - burst=200 calls all 200 devices at once, waits for every answer, and
//     again (rounds 10 ms apart); latency counts from the round's start.
//
// Both saturate the 2 cores: a call's latency is mostly its wait behind the
// others (BenchmarkBareHTTP2 is the same shapes with nothing behind HTTP).
// BenchmarkDirectMethodAtRate is the round trip under a given load.
func BenchmarkDirectMethod(b *testing.B) {
	reg, ids := methodDevices(b)
	invoke := methodCaller(reg)
	for _, inFlight := range []int{8, 50, benchDevices} {
		b.Run(fmt.Sprintf("in-flight=%d", inFlight), func(b *testing.B) {
			turns := make([]int, inFlight)
			backToBack(b, inFlight, func(caller int) error {
				id := ids[(caller+turns[caller]*inFlight)%len(ids)]
				turns[caller]++
				return invoke(id)
			})
		})
	}
	b.Run(fmt.Sprintf("burst=%d", len(ids)), func(b *testing.B) {
		inRounds(b, len(ids), func(i int) error { return invoke(ids[i]) })
	})
}

// BenchmarkDirectMethodAtRate is the same round trip with the calls coming
// at a fixed rate instead of back to back: call k is due at k/rate seconds,
// to device k mod 200, started when due whether or not earlier calls have
// returned (an open loop, as calls from an operator's services arrive). A
// call's latency counts from when it was due, so a late start counts
// against it.
func BenchmarkDirectMethodAtRate(b *testing.B) {
	reg, ids := methodDevices(b)
	invoke := methodCaller(reg)
	for _, rate := range []int{1000, 2000, 4000} {
		b.Run(fmt.Sprintf("calls-per-s=%d", rate), func(b *testing.B) {
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			interval := time.Second / time.Duration(rate)
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			for k := range b.N {
				due := start.Add(time.Duration(k) * interval)
				time.Sleep(time.Until(due))
				wg.Go(func() {
					if err := invoke(ids[k%len(ids)]); err != nil {
						b.Error(err)
					}
					lat[k] = time.Since(due)
				})
			}
			wg.Wait()
			b.StopTimer()
			reportCPU(b, cpu0)
			reportLatency(b, lat)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}

// BenchmarkBareHTTP2 is the floor under BenchmarkDirectMethod's shapes:
// net/http's own HTTP/2 over TLS on this machine, one connection, to a
// handler that only echoes a method call's body (no azcore, no hub, no MQTT,
// no device). A round trip in the same shape cannot be faster than this.
func BenchmarkBareHTTP2(b *testing.B) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(body)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := srv.Client()
	body := []byte(`{"methodName":"reboot","responseTimeoutInSeconds":30,"payload":{"delay":1}}`)
	call := func(int) error {
		res, err := c.Post(srv.URL+"/twins/dev-00/methods?api-version="+hub.APIVersion, "application/json; charset=utf-8", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if _, err := io.Copy(io.Discard, res.Body); err != nil || res.ProtoMajor != 2 {
			return fmt.Errorf("%s: %v", res.Proto, err)
		}
		return nil
	}
	if err := call(0); err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("in-flight=%d", benchDevices), func(b *testing.B) { backToBack(b, benchDevices, call) })
	b.Run(fmt.Sprintf("burst=%d", benchDevices), func(b *testing.B) { inRounds(b, benchDevices, call) })
}

// methodDevices connects benchDevices devices that answer every direct
// method with status 200 and the call's payload, and warms the service
// side's connection; it returns the service client and the device IDs.
func methodDevices(b *testing.B) (*hub.RegistryClient, []string) {
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
	for _, id := range ids {
		if _, err := reg.InvokeMethod(ctx, id, "warm", json.RawMessage(`{}`), nil); err != nil {
			b.Fatal(err)
		}
	}
	return reg, ids
}

// methodCaller returns a call of the "reboot" method that checks the
// device's echo.
func methodCaller(reg *hub.RegistryClient) func(id string) error {
	payload := json.RawMessage(`{"delay":1}`)
	return func(id string) error {
		res, err := reg.InvokeMethod(context.Background(), id, "reboot", payload, nil)
		if err == nil && (res.Status != 200 || string(res.Payload) != string(payload)) {
			err = fmt.Errorf("answer %+v", res)
		}
		return err
	}
}

// backToBack makes b.N calls from n callers, each starting its next call as
// its last returns, and reports their latency and throughput.
func backToBack(b *testing.B, n int, call func(caller int) error) {
	lat := make([][]time.Duration, n) // by caller: no lock on the clock's path
	parallelPerDevice(b, n, func(caller int) error {
		t0 := time.Now()
		err := call(caller)
		lat[caller] = append(lat[caller], time.Since(t0))
		return err
	})
	reportLatency(b, slices.Concat(lat...))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// inRounds makes about b.N calls (whole rounds, at least one) in rounds of
// n at once, call i of a round with i, each round 10 ms after the last
// returned, and reports the latency of each call from its round's start
// and the CPU per call; the pauses are not timed.
func inRounds(b *testing.B, n int, call func(i int) error) {
	rounds := max(1, b.N/n)
	lat := make([]time.Duration, rounds*n)
	b.ResetTimer()
	var cpu time.Duration
	for r := range rounds {
		b.StartTimer()
		cpu0 := cpuTime()
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range n {
			wg.Go(func() {
				if err := call(i); err != nil {
					b.Error(err)
				}
				lat[r*n+i] = time.Since(t0)
			})
		}
		wg.Wait()
		cpu += cpuTime() - cpu0
		b.StopTimer()
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/op")
	reportLatency(b, lat)
}

// reportLatency reports the median and 99th percentile of lat in ms.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
