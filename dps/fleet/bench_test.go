package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/fleet"
)

var (
	benchDevices     = flag.Int("fleet.devices", 10000, "devices of each fleet run of BenchmarkFleetVsNodeSDK")
	benchNodeDevices = flag.Int("fleet.node-devices", 3000, "devices of each Node SDK run of BenchmarkFleetVsNodeSDK (0 = no Node run)")
	benchInFlight    = flag.Int("fleet.concurrency", 1000, "devices registering at once, fleet and Node SDK alike")
	benchTransports  = flag.String("fleet.transports", "https,mqtt", "transports of BenchmarkFleetVsNodeSDK")
)

// BenchmarkFleetVsNodeSDK registers fleets against the in-process emulator
// with its default 1 s assignment delay, each device on its own connection,
// and the official Node device SDK the same way at the same concurrency, in
// one run so the figures share the machine's load:
//
//	go test ./dps/fleet -run '^$' -bench FleetVsNodeSDK -benchtime 1x
//
// The emulator listens on 127.0.31.1:443 and :8883 (the Node SDK cannot
// take a port), which needs root. CPU per registration counts this process
// (the emulator, and the fleet in its runs) and the node child.
func BenchmarkFleetVsNodeSDK(b *testing.B) {
	f := start(b, emulator.Options{AssignmentDelay: time.Second, HTTPSAddr: "127.0.31.1:443",
		HubAddrs: []string{"127.0.31.2:443", "127.0.31.3:443"}, MQTTAddr: "127.0.31.1:8883"})
	for range b.N {
		for _, tr := range strings.Split(*benchTransports, ",") {
			if *benchNodeDevices > 0 {
				nodeRun(b, f, tr)
			}
			fleetRun(b, f, tr)
		}
	}
}

// phase measures one run: wall time, CPU of this process and its children.
type phase struct {
	t0         time.Time
	self, kids time.Duration
	load       string
}

func startPhase() phase {
	s, k := cpuTimes()
	return phase{t0: time.Now(), self: s, kids: k, load: loadAverage()}
}

func (p phase) report(b *testing.B, name string, n int, p50, p99 time.Duration) {
	el := time.Since(p.t0)
	s, k := cpuTimes()
	cpu := (s - p.self) + (k - p.kids)
	rate := float64(n) / el.Seconds()
	b.ReportMetric(rate, name+"-reg/s")
	b.ReportMetric(float64(p99.Milliseconds()), name+"-p99-ms")
	b.Logf("%-12s %6d devices, %4d at once: %7.1f/s, p50 %v, p99 %v, CPU %.2f ms/registration, load %s → %s",
		name, n, *benchInFlight, rate, p50.Round(time.Millisecond), p99.Round(time.Millisecond),
		float64(cpu.Microseconds())/1000/float64(n), p.load, loadAverage())
}

func fleetRun(b *testing.B, f *fixture, tr string) {
	b.Helper()
	cfg := f.config(b, *benchDevices)
	spec, err := fleet.NewSpec(f.svc.Host(), f.em.Env().IDScope, groupID, "go-"+tr, 1, *benchDevices, tr)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Spec, cfg.NewHTTPClient, cfg.Concurrency = spec, nil, *benchInFlight
	cfg.TLSConfig = f.base.Transport.(*http.Transport).TLSClientConfig
	cfg.MQTTHost = f.em.Env().MQTTEndpoint
	runtime.GC()
	p := startPhase()
	sum, err := fleet.Run(b.Context(), cfg)
	if err != nil || sum.Assigned != *benchDevices {
		b.Fatalf("fleet over %s: %+v, %v", tr, sum, err)
	}
	p.report(b, "fleet-"+tr, sum.Assigned, sum.Latency.P50, sum.Latency.P99)
}

// nodeResult is what js/fleet_anchor.js prints.
type nodeResult struct {
	Assigned, Failed int
	PerSecond        float64
	P50Ms, P99Ms     float64
	Failures         map[string]int
}

func nodeRun(b *testing.B, f *fixture, tr string) {
	b.Helper()
	dir, err := filepath.Abs("../../interop")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		b.Skip("node is not installed: the Node SDK anchor needs Node.js 18+")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "azure-iot-provisioning-device")); err != nil {
		b.Skip("the Node SDKs are not installed: run `npm ci` in interop/ (or go test ./interop once)")
	}
	env := f.em.Env()
	nodeTr := map[string]string{"https": "http", "mqtt": "mqtt"}[tr]
	if nodeTr == "" {
		b.Fatalf("no Node SDK anchor for transport %q", tr)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "js", "fleet_anchor.js"))
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+env.CAFile, "DPS_DEVICE_ENDPOINT="+env.DeviceEndpoint,
		"DPS_MQTT_ENDPOINT="+env.MQTTEndpoint, "DPS_ID_SCOPE="+env.IDScope, "GROUP_KEY="+f.groupKey.Base64(),
		"PREFIX=node-"+tr, "COUNT="+strconv.Itoa(*benchNodeDevices), "CONCURRENCY="+strconv.Itoa(*benchInFlight), "TRANSPORT="+nodeTr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	p := startPhase()
	if err := cmd.Run(); err != nil {
		b.Fatalf("node fleet_anchor.js: %v\n%s", err, out.String())
	}
	var res nodeResult
	_, line, ok := strings.Cut(out.String(), "result ")
	if !ok || json.Unmarshal([]byte(line), &res) != nil {
		b.Fatalf("node fleet_anchor.js printed no result:\n%s", out.String())
	}
	if res.Failed > 0 {
		b.Errorf("Node SDK over %s: %d of %d failed: %v", tr, res.Failed, *benchNodeDevices, res.Failures)
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	p.report(b, "node-"+tr, res.Assigned, ms(res.P50Ms), ms(res.P99Ms))
}

// cpuTimes is the user+system CPU of this process and of its waited-for children.
func cpuTimes() (self, children time.Duration) {
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	var s, c syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	return tv(s.Utime) + tv(s.Stime), tv(c.Utime) + tv(c.Stime)
}

// loadAverage is the machine's 1-minute load average, as uptime shows it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// TestFleetMemoryPerDeviceInFlight holds 1,000 devices in flight, each
// with its register answered and its poll waiting on its own TLS
// connection (the emulator keeps them assigning), and measures the live
// heap and goroutine stacks they add: fleet, device client, TLS connection,
// and the emulator's side of it, which runs in this process too. Budget:
// 100 KB a device.
func TestFleetMemoryPerDeviceInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 1,000 devices in flight")
	}
	const n = 1000
	f := start(t, emulator.Options{AssignmentDelay: time.Minute})
	cfg := f.config(t, n)
	cfg.Concurrency, cfg.NewHTTPClient, cfg.Drain = n, nil, time.Millisecond
	cfg.TLSConfig = f.base.Transport.(*http.Transport).TLSClientConfig
	base := liveHeap()
	var accepted atomic.Int64
	all := make(chan struct{})
	cfg.OnEvent = func(_ string, ev device.Event) {
		if ev.Step == device.StepAccepted && accepted.Add(1) == n {
			close(all)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var peak uint64
	go func() {
		select {
		case <-all:
			time.Sleep(200 * time.Millisecond) // the last answers read
			peak = liveHeap()
		case <-time.After(2 * time.Minute):
		}
		cancel()
	}()
	fleet.Run(ctx, cfg) // interrupted once measured
	if peak == 0 {
		t.Fatalf("only %d of %d devices were in flight with their register answered at once", accepted.Load(), n)
	}
	per := (int64(peak) - int64(base)) / n
	t.Logf("%d bytes of live heap and stacks per device in flight (client and emulator sides)", per)
	if per > 100<<10 {
		t.Errorf("%d KiB per device in flight, want ≤ 100", per>>10)
	}
}

// liveHeap is the live heap after a GC plus the goroutine stacks: a device
// in flight holds goroutines on both sides.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// BenchmarkFleetThrottled is the full run TestFleetAtTheQuota scales down:
// 3,000 devices against the emulator at --throttle 1000/min, its quota spent
// by another client, the fleet paced at the quota as it is by default
// against a real DPS; about 3 minutes. Run it with -benchtime 1x.
func BenchmarkFleetThrottled(b *testing.B) {
	for range b.N {
		load := loadAverage()
		r := quotaRun(b, 1000, 3000)
		b.ReportMetric(r.elapsed.Seconds(), "s")
		b.ReportMetric(100*r.share, "%-of-quota")
		b.ReportMetric(100*float64(r.throttled)/float64(r.requests), "%-429")
		b.Logf("%d devices in %v: %.1f %% of 1,000/min; %d of %d requests answered 429; load %s → %s",
			r.devices, r.elapsed.Round(time.Millisecond), 100*r.share, r.throttled, r.requests, load, loadAverage())
		r.check(b)
	}
}
