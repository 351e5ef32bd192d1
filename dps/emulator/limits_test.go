package emulator

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/keys"
)

// shortLimits cut slow clients within a second, so tests need not wait the
// real half minute.
var shortLimits = httpLimits{header: 500 * time.Millisecond, request: time.Second, write: 5 * time.Second, idle: 2 * time.Second, maxBody: 2 << 20}

// trickle opens a raw TLS connection to addr, sends head and then one byte
// of filler every step, and returns how long the server kept the connection.
func trickle(t *testing.T, e *Emulator, addr, head string, step time.Duration) time.Duration {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.CertPool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		// Whatever the server answers, it must then close the connection.
		io.Copy(io.Discard, conn)
		close(closed)
	}()
	tick := time.NewTicker(step)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			return time.Since(start)
		case <-tick.C:
			if time.Since(start) > 10*time.Second {
				t.Fatalf("the server still holds a connection trickling %q after 10 s", strings.SplitN(head, "\r\n", 2)[0])
			}
			conn.Write([]byte("a")) // fails once the server has closed; the reader notices
		}
	}
}

// TestSlowClientsAreCut: a request whose headers or body trickle in is cut
// at the read deadline on every listener (DPS and hubs), with or without a
// valid token, while other clients are served meanwhile.
func TestSlowClientsAreCut(t *testing.T) {
	e := startTest(t, Options{Seed: "none", HubAddrs: []string{"127.0.0.1:0"}, limits: &shortLimits})
	gk := createGroup(t, e, map[string]any{"enrollmentGroupId": "g"})
	dk, _ := keys.DeriveDeviceKey(gk, "dev")
	devTok := newRawDevice(t, e, "dev", dk).token()
	h := e.hubs[0]
	hubTok := keys.SignSAS(h.HostName, h.key, h.PolicyName, time.Now().Add(time.Hour))
	dpsAddr, hubAddr, scope := e.dpsHost, h.HostName, e.idScope
	cases := []struct{ name, addr, head string }{
		{"DPS headers", dpsAddr, "PUT /" + scope + "/registrations/dev/register HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		{"DPS body, no token", dpsAddr, "PUT /" + scope + "/registrations/dev/register HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"},
		{"DPS body, device token", dpsAddr, "PUT /" + scope + "/registrations/dev/register HTTP/1.1\r\nHost: x\r\nAuthorization: " + devTok + "\r\nContent-Length: 1000\r\n\r\n"},
		{"DPS service body, chunked", dpsAddr, "PUT /enrollmentGroups/x" + av + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + keys.SignSAS(e.dpsHost, e.serviceKey, servicePolicy, time.Now().Add(time.Hour)) + "\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n"},
		{"hub headers", hubAddr, "POST /devices/dev/messages/events HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		{"hub body, service token", hubAddr, "POST /devices/query HTTP/1.1\r\nHost: x\r\nAuthorization: " + hubTok + "\r\nContent-Length: 1000\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if held := trickle(t, e, c.addr, c.head, 100*time.Millisecond); held > 3*time.Second {
				t.Errorf("held %v, want at most the 1 s read deadline (plus slack)", held)
			}
		})
	}
	// Meanwhile a real client is served.
	t.Run("others served", func(t *testing.T) {
		t.Parallel()
		time.Sleep(300 * time.Millisecond)
		newSvc(t, e).must(http.StatusOK, http.MethodPost, "/enrollmentGroups/query"+av, nil)
	})
}

// TestSlowHTTP2BodyIsCut: the same over HTTP/2, where the deadline applies
// to each stream.
func TestSlowHTTP2BodyIsCut(t *testing.T) {
	e := startTest(t, Options{Seed: "none", HubAddrs: []string{"127.0.0.1:0"}, limits: &shortLimits})
	s := newSvc(t, e)
	pr, pw := io.Pipe()
	go func() {
		for range 100 {
			if _, err := pw.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	defer pw.Close()
	r := mustRequest(t, s, http.MethodPut, "/enrollmentGroups/slow"+av)
	r.Body = pr
	start := time.Now()
	resp, err := s.client.Do(r)
	if err == nil {
		if resp.ProtoMajor != 2 {
			t.Fatalf("the test client spoke %s, not HTTP/2", resp.Proto)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if held := time.Since(start); held > 3*time.Second {
		t.Errorf("an HTTP/2 body trickling in was held %v (%v), want it cut at the 1 s deadline", held, err)
	}
	if err == nil && resp.StatusCode < 400 {
		t.Errorf("a cut body was answered %d", resp.StatusCode)
	}
}

// TestBodiesOverTheCapAreRefused: every listener refuses a body larger
// than its cap with 413 in its own error shape, declared or chunked.
func TestBodiesOverTheCapAreRefused(t *testing.T) {
	lim := shortLimits
	lim.maxBody = 64 << 10
	e := startTest(t, Options{Seed: "none", HubAddrs: []string{"127.0.0.1:0"}, limits: &lim})
	s := newSvc(t, e)
	h := e.hubs[0]
	big := `{"query":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, c := range []struct {
		name, url, auth, errHeader string
		chunked                    bool
	}{
		{"DPS", "https://" + s.host + "/enrollmentGroups/query" + av, "", "x-ms-error-code", false},
		{"DPS, chunked", "https://" + s.host + "/enrollmentGroups/query" + av, "", "x-ms-error-code", true},
		{"hub", "https://" + h.HostName + "/devices/query?api-version=2021-04-12",
			keys.SignSAS(h.HostName, h.key, h.PolicyName, time.Now().Add(time.Hour)), "iothub-errorcode", false},
	} {
		var body io.Reader = strings.NewReader(big)
		if c.chunked {
			body = io.MultiReader(body) // length unknown: sent chunked
		}
		r, err := http.NewRequest(http.MethodPost, c.url, body)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", c.auth)
		if c.auth == "" {
			r.Header.Set("Authorization", keys.SignSAS(s.host, s.key, s.policy, time.Now().Add(time.Hour)))
		}
		resp, err := s.client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get(c.errHeader) == "" || !strings.Contains(string(b), "65536") {
			t.Errorf("%s: a 70 KB body: HTTP %d %s, want 413 naming the 65536-byte cap", c.name, resp.StatusCode, b)
		}
	}
}

// TestSilentAndIdleConnectionsAreClosed: a connection that never starts its
// TLS handshake is closed at the header deadline, and a kept-alive one at
// the idle deadline.
func TestSilentAndIdleConnectionsAreClosed(t *testing.T) {
	e := startTest(t, Options{Seed: "none", HubAddrs: []string{"127.0.0.1:0"}, limits: &shortLimits})
	for _, addr := range []string{e.dpsHost, e.hubs[0].HostName} {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = raw.Read(make([]byte, 1))
		raw.Close()
		if held := time.Since(start); err == nil || held > 3*time.Second {
			t.Errorf("%s: a connection without a TLS handshake was held %v (%v), want it closed at the 0.5 s header deadline", addr, held, err)
		}

		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.CertPool(), NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		start = time.Now()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		if held := time.Since(start); err == nil || held > 4*time.Second {
			t.Errorf("%s: an idle kept-alive connection was held %v (%v), want it closed at the 2 s idle deadline", addr, held, err)
		}
	}
}
