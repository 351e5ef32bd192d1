package emulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/keys"
)

// startTest starts an emulator in a temporary data dir (or opts.DataDir) and
// closes it when the test ends.
func startTest(t testing.TB, opts Options) *Emulator {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	e, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// svc is a plain net/http client of the emulator's service API, signing
// every request with a fresh SAS.
type svc struct {
	t      testing.TB
	host   string
	key    keys.Key
	policy string
	client *http.Client
}

func newSvc(t testing.TB, e *Emulator) *svc {
	t.Helper()
	cs, err := keys.ParseServiceConnectionString(e.Env().DPSConnectionString)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CertPool()}, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &svc{t: t, host: cs.HostName, key: cs.SharedAccessKey, policy: cs.SharedAccessKeyName, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// req sends a request; body may be nil, a string (sent as is) or a value to
// encode as JSON. hdr holds extra headers ("Authorization": "" drops it).
func (s *svc) req(method, path string, body any, hdr ...string) (*http.Response, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	r, err := http.NewRequest(method, "https://"+s.host+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		r.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	r.Header.Set("Authorization", keys.SignSAS(s.host, s.key, s.policy, time.Now().Add(time.Hour)))
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			r.Header.Del(hdr[i])
			continue
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(r)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp, b
}

// must sends a request and fails the test unless the status is want.
func (s *svc) must(want int, method, path string, body any, hdr ...string) (*http.Response, []byte) {
	s.t.Helper()
	resp, b := s.req(method, path, body, hdr...)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, want, b)
	}
	return resp, b
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// mustRequest builds a signed request without sending it.
func mustRequest(t testing.TB, s *svc, method, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "https://"+s.host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", keys.SignSAS(s.host, s.key, s.policy, time.Now().Add(time.Hour)))
	return r
}
