package emulator

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"
)

// maxIdleConnBytes is the budget of one idle MQTT connection (issue #11 §5).
const maxIdleConnBytes = 64 << 10

// TestMQTTIdleConnectionMemory: an idle MQTT connection (CONNECT and a
// subscription done), over TLS or over a WebSocket, costs the emulator at
// most 64 KiB of Go heap and goroutine stack. 1,000 connections each here;
// BenchmarkMQTTIdleConnections measures 10,000.
func TestMQTTIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 TLS connections")
	}
	for _, ws := range []bool{false, true} {
		perConn, rss, goroutines := measureIdleMQTT(t, 1000, ws)
		t.Logf("%s: per idle connection %.1f KiB heap+stack, %.1f KiB RSS, %.2f goroutines", transportName(ws), perConn/1024, rss/1024, goroutines)
		if perConn > maxIdleConnBytes {
			t.Errorf("%s: an idle MQTT connection holds %.1f KiB, budget %d KiB", transportName(ws), perConn/1024, maxIdleConnBytes>>10)
		}
	}
}

// BenchmarkMQTTIdleConnections opens b.N idle MQTT connections (over TLS,
// then over WebSockets) to an emulator in another process and reports its
// memory per connection:
//
//	go test ./dps/emulator -run '^$' -bench MQTTIdleConnections -benchtime 10000x
func BenchmarkMQTTIdleConnections(b *testing.B) {
	for _, ws := range []bool{false, true} {
		b.Run(transportName(ws), func(b *testing.B) {
			perConn, rss, goroutines := measureIdleMQTT(b, b.N, ws)
			b.ReportMetric(perConn, "heap+stack-B/conn")
			b.ReportMetric(rss, "RSS-B/conn")
			b.ReportMetric(goroutines, "goroutines/conn")
			b.ReportMetric(0, "ns/op")
			if perConn > maxIdleConnBytes {
				b.Errorf("an idle MQTT connection holds %.1f KiB, budget %d KiB", perConn/1024, maxIdleConnBytes>>10)
			}
		})
	}
}

func transportName(ws bool) string {
	if ws {
		return "websocket"
	}
	return "tls"
}

const memoryServerEnv = "DPSCONSOLE_MQTT_MEMORY_SERVER"

// TestMQTTMemoryServerProcess is the emulator process of measureIdleMQTT
// (the test binary run again): it prints its MQTT endpoint and CA, then
// answers each "measure" line on stdin with its memory, until stdin closes.
func TestMQTTMemoryServerProcess(t *testing.T) {
	if os.Getenv(memoryServerEnv) == "" {
		t.Skip("the server process of TestMQTTIdleConnectionMemory")
	}
	e := startTest(t, Options{mqttMaxKeepAlive: time.Hour})
	fmt.Printf("READY %s %s %s\n", e.Env().MQTTEndpoint, e.Env().DeviceEndpoint, e.Env().CAFile)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("MEM %d %d %d\n", ms.HeapInuse+ms.StackInuse, residentBytes(), runtime.NumGoroutine())
	}
}

// residentBytes is the process's resident set (VmRSS), 0 where unknown.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// measureIdleMQTT starts the emulator in a child process (so the clients'
// memory is not counted), opens n idle MQTT connections to DPS (its MQTT/TLS
// listener, or WebSockets on its HTTPS port) and returns the child's growth per connection: Go heap + stacks after GC,
// resident set, goroutines.
func measureIdleMQTT(tb testing.TB, n int, ws bool) (heapStack, rss, goroutines float64) {
	// The child's own timeout (room for n handshakes on a loaded machine)
	// makes it panic with its goroutines rather than outlive this test.
	timeout := 2*time.Minute + time.Duration(n)*20*time.Millisecond
	cmd := exec.Command(os.Args[0], "-test.run=^TestMQTTMemoryServerProcess$", "-test.count=1", "-test.timeout="+timeout.String())
	cmd.Env = append(os.Environ(), memoryServerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			tb.Errorf("the emulator process did not end cleanly once its stdin closed: %v (its goroutines are on stderr)", err)
		}
	}()
	out := bufio.NewScanner(stdout)
	line := func(prefix string) []string {
		for out.Scan() {
			if f := strings.Fields(out.Text()); len(f) > 0 && f[0] == prefix {
				return f[1:]
			}
		}
		tb.Fatalf("the emulator process ended before %s", prefix)
		return nil
	}
	ready := line("READY")
	addr, caFile := ready[0], ready[2]
	if ws {
		addr = "wss://" + ready[1] + mqttWebSocketPath
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	measure := func() (uint64, uint64, uint64) {
		fmt.Fprintln(stdin, "measure")
		f := line("MEM")
		a, _ := strconv.ParseUint(f[0], 10, 64)
		b, _ := strconv.ParseUint(f[1], 10, 64)
		c, _ := strconv.ParseUint(f[2], 10, 64)
		return a, b, c
	}
	heap0, rss0, g0 := measure()

	conns := make([]*rawMQTT, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	conf := &tls.Config{RootCAs: pool, ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				c, err := openIdleMQTT(addr, conf, i)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	time.Sleep(500 * time.Millisecond) // let handshake garbage become collectable
	heap1, rss1, g1 := measure()
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
	return per(heap0, heap1), per(rss0, rss1), per(g0, g1)
}

// openIdleMQTT connects as a DPS client would, to a host:port over TLS or
// to a wss:// URL, and subscribes to the response topic, then leaves the
// connection idle.
func openIdleMQTT(addr string, conf *tls.Config, i int) (*rawMQTT, error) {
	var c net.Conn
	if strings.HasPrefix(addr, "wss://") {
		d := websocket.Dialer{TLSClientConfig: conf, Subprotocols: []string{"mqtt"}, HandshakeTimeout: 30 * time.Second}
		ws, _, err := d.Dial(addr, nil)
		if err != nil {
			return nil, err
		}
		c = &wsConn{Conn: ws.NetConn(), ws: ws}
	} else {
		d := tls.Dialer{Config: conf}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		c = tc
	}
	m := &rawMQTT{conn: c, r: bufio.NewReader(c)}
	id := "idle-" + strconv.Itoa(i)
	pk := connectPacket(id, "0ne00000000/registrations/"+id+"/api-version=2019-03-31", "SharedAccessSignature sr=x&sig=y&se=1")
	pk.Connect.Keepalive = 1200
	if err := m.send(pk); err != nil {
		return nil, err
	}
	if ack, err := m.read(30 * time.Second); err != nil || ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		return nil, fmt.Errorf("CONNECT: %v %s", err, describe(ack))
	}
	if err := m.send(subscribePacket(1, "$dps/registrations/res/#")); err != nil {
		return nil, err
	}
	if ack, err := m.read(30 * time.Second); err != nil || ack.FixedHeader.Type != packets.Suback {
		return nil, fmt.Errorf("SUBSCRIBE: %v %s", err, describe(ack))
	}
	m.conn.SetDeadline(time.Time{})
	return m, nil
}
