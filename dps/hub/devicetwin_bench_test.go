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
	reg, ids := methodDevices(b)
	ctx := context.Background()
	payload := json.RawMessage(`{"delay":1}`)
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
			reportLatency(b, slices.Concat(lat...))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}

// BenchmarkDirectMethodAtRate is the same round trip with the calls coming
// at a fixed rate instead of back to back: call k is due at k/rate seconds,
// to device k mod 200, started when due whether or not earlier calls have
// returned (an open loop, as calls from an operator's services arrive). A
// call's latency counts from when it was due, so a late start counts
// against it. BenchmarkDirectMethod's in-flight=200 is the saturated case:
// every caller waits behind the 199 others, so its latency is 200 ÷ the
// throughput whatever the hub does (Little's law).
func BenchmarkDirectMethodAtRate(b *testing.B) {
	reg, ids := methodDevices(b)
	ctx := context.Background()
	payload := json.RawMessage(`{"delay":1}`)
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
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := reg.InvokeMethod(ctx, ids[k%len(ids)], "reboot", payload, nil)
					lat[k] = time.Since(due)
					if err == nil && (res.Status != 200 || string(res.Payload) != string(payload)) {
						err = fmt.Errorf("answer %+v", res)
					}
					if err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			reportLatency(b, lat)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
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

// reportLatency reports the median and 99th percentile of lat in ms.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkBareHTTP2 is the floor under BenchmarkDirectMethod's
// in-flight=200: net/http's own HTTP/2 over TLS on this machine, 200
// callers back to back on one connection to a handler that only echoes a
// method call's body (no azcore, no hub, no MQTT, no device). Whatever the
// hub does, a round trip at 200 in flight cannot be faster than this.
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
	call := func() error {
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
	if err := call(); err != nil {
		b.Fatal(err)
	}
	lat := make([][]time.Duration, benchDevices)
	parallelPerDevice(b, benchDevices, func(caller int) error {
		t0 := time.Now()
		err := call()
		lat[caller] = append(lat[caller], time.Since(t0))
		return err
	})
	reportLatency(b, slices.Concat(lat...))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
