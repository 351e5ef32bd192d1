package dps

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/keys"
)

// These tests drive the client against a bare httptest TLS server to pin
// down the wire details; emulator_test.go runs it against the real emulator.

const (
	testKeyB64  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testKeyName = "provisioningserviceowner"
)

// newTestClient serves h over TLS and returns a client trusting it.
func newTestClient(t *testing.T, h http.HandlerFunc, mod func(*ClientOptions)) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	tr, err := NewTransport(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	opts := &ClientOptions{}
	opts.Transport = tr
	opts.Retry.RetryDelay = 10 * time.Millisecond
	if mod != nil {
		mod(opts)
	}
	host := strings.TrimPrefix(srv.URL, "https://")
	c, err := NewClientFromConnectionString(fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", host, testKeyName, testKeyB64), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestSASHeaderVerifiesAndIsCached(t *testing.T) {
	key, _ := keys.ParseKey(testKeyB64)
	var mu sync.Mutex
	var tokens []string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		sas, err := keys.ParseSAS(auth)
		if err == nil {
			err = sas.Verify(key, r.Host, time.Now())
		}
		if err != nil || sas.KeyName != testKeyName || r.URL.Query().Get("api-version") != APIVersion {
			writeJSON(w, 401, ErrorDetails{ErrorCode: 401002, Message: fmt.Sprint("unauthorized: ", err, " skn=", sas.KeyName)})
			return
		}
		mu.Lock()
		tokens = append(tokens, auth)
		mu.Unlock()
		writeJSON(w, 200, DeviceRegistrationState{RegistrationID: "dev1"})
	}, nil)
	p := c.sas
	clock := time.Now()
	p.now = func() time.Time { return clock }

	ctx := context.Background()
	for range 2 {
		if _, err := c.GetRegistrationState(ctx, "dev1"); err != nil {
			t.Fatal(ErrorMessage(err))
		}
	}
	// Close to expiry the policy signs a fresh token before sending.
	clock = clock.Add(sasLifetime - sasRenewBefore + time.Second)
	if _, err := c.GetRegistrationState(ctx, "dev1"); err != nil {
		t.Fatal(ErrorMessage(err))
	}
	if tokens[0] != tokens[1] {
		t.Error("the token was not reused within its lifetime")
	}
	if tokens[1] == tokens[2] {
		t.Error("the token was not renewed before expiry")
	}
}

func TestSASTokenIsSafeForConcurrentUse(t *testing.T) {
	key, _ := keys.ParseKey(testKeyB64)
	p := newSASPolicy("h.example", testKeyName, key, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := keys.ParseSAS(p.currentToken()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func TestPlainHTTPRefusedUnlessAllowed(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, 200, EnrollmentGroup{EnrollmentGroupID: "g"})
	}))
	defer srv.Close()
	cs := fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", strings.TrimPrefix(srv.URL, "http://"), testKeyName, testKeyB64)

	c, err := NewClientFromConnectionString(cs, &ClientOptions{Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetEnrollmentGroup(context.Background(), "g"); !errors.Is(err, errPlainHTTP) {
		t.Fatalf("plain HTTP: got %v, want errPlainHTTP", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the request reached the server")
	}
	c, err = NewClientFromConnectionString(cs, &ClientOptions{Scheme: "http", InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetEnrollmentGroup(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
}

func TestBadConnectionStringNeverEchoesKey(t *testing.T) {
	for _, cs := range []string{
		"HostName=h;SharedAccessKey=" + testKeyB64,                                  // no policy name
		"HostName=h;SharedAccessKeyName=p;SharedAccessKey=" + testKeyB64[:20] + "!", // bad base64
		"HostName=h;DeviceId=d;SharedAccessKey=" + testKeyB64,                       // device string
	} {
		_, err := NewClientFromConnectionString(cs, nil)
		if err == nil {
			t.Fatalf("%q accepted", cs)
		}
		if strings.Contains(err.Error(), testKeyB64[:20]) {
			t.Errorf("error repeats the key: %v", err)
		}
	}
}

func TestErrorsCarryDPSCodeAndFriendlyMessage(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/enrollmentGroups/"):
			writeJSON(w, 404, ErrorDetails{ErrorCode: 404201, TrackingID: "trk-1", Message: "Enrollment group not found"})
		case r.Method == http.MethodDelete:
			writeJSON(w, 412, ErrorDetails{ErrorCode: 412002, TrackingID: "trk-2", Message: "ETag mismatch"})
		default:
			w.WriteHeader(502)
			io.WriteString(w, "<html>bad gateway</html>")
		}
	}, func(o *ClientOptions) { o.Retry.MaxRetries = -1 })
	ctx := context.Background()

	_, err := c.GetEnrollmentGroup(ctx, "nope")
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.ErrorCode != "404201" {
		t.Fatalf("got %#v, want *azcore.ResponseError with code 404201", err)
	}
	if !IsNotFound(err) || IsPreconditionFailed(err) || ErrorCodeOf(err) != 404201 {
		t.Errorf("IsNotFound=%v IsPreconditionFailed=%v ErrorCodeOf=%d", IsNotFound(err), IsPreconditionFailed(err), ErrorCodeOf(err))
	}
	msg := ErrorMessage(err)
	for _, want := range []string{"404", "Enrollment group not found", "404201", "trk-1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}

	etag := azcore.ETag(`"v1"`)
	err = c.DeleteRegistrationState(ctx, "dev", &WriteOptions{IfMatch: &etag})
	if !IsPreconditionFailed(err) || ErrorCodeOf(err) != 412002 {
		t.Errorf("delete: got %v", err)
	}

	_, err = c.GetRegistrationState(ctx, "dev")
	if ErrorCodeOf(err) != 0 || !strings.Contains(ErrorMessage(err), "502 Bad Gateway: <html>bad gateway</html>") {
		t.Errorf("non-DPS body: code %d, message %q", ErrorCodeOf(err), ErrorMessage(err))
	}

	for _, m := range []string{ErrorMessage(err), err.Error()} {
		if strings.Contains(m, "SharedAccessSignature") || strings.Contains(m, "sig=") {
			t.Errorf("error text carries a token: %s", m)
		}
	}
}

func TestPathEscapingAndIfMatch(t *testing.T) {
	var gotPath, gotIfMatch string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotIfMatch = r.URL.EscapedPath(), r.Header.Get("If-Match")
		var g EnrollmentGroup
		_ = json.NewDecoder(r.Body).Decode(&g)
		g.ETag = `"v2"`
		writeJSON(w, 200, g)
	}, nil)
	etag := azcore.ETag(`"v1"`)
	g, err := c.CreateOrUpdateEnrollmentGroup(context.Background(),
		EnrollmentGroup{EnrollmentGroupID: "grp 1/x", Attestation: AttestationMechanism{Type: AttestationSymmetricKey}},
		&WriteOptions{IfMatch: &etag})
	if err != nil {
		t.Fatal(err)
	}
	if gotPath != "/enrollmentGroups/grp%201%2Fx" || gotIfMatch != `"v1"` || g.ETag != `"v2"` {
		t.Errorf("path %q If-Match %q etag %q", gotPath, gotIfMatch, g.ETag)
	}
	if _, err := c.GetEnrollment(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "registration ID is empty") {
		t.Errorf("empty ID: %v", err)
	}
}

func TestPagerFollowsContinuation(t *testing.T) {
	for _, prefetch := range []bool{false, true} {
		t.Run(fmt.Sprintf("prefetch=%v", prefetch), func(t *testing.T) { testPager(t, prefetch) })
	}
}

func testPager(t *testing.T, prefetch bool) {
	const total = 23
	var mu sync.Mutex
	var requests []string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/registrations/grp/query" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, 400)
			return
		}
		size, _ := strconv.Atoi(r.Header.Get(headerMaxItemCount))
		start, _ := strconv.Atoi(r.Header.Get(headerContinuation))
		mu.Lock()
		requests = append(requests, r.Header.Get(headerContinuation))
		mu.Unlock()
		var items []DeviceRegistrationState
		for i := start; i < min(start+size, total); i++ {
			items = append(items, DeviceRegistrationState{RegistrationID: fmt.Sprintf("dev-%02d", i)})
		}
		if start+size < total {
			w.Header().Set(headerContinuation, strconv.Itoa(start+size))
		}
		writeJSON(w, 200, items)
	}, nil)

	var ids []string
	pager := c.NewRegistrationStatePager("grp", &PagerOptions{PageSize: 5, Prefetch: prefetch})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Items {
			ids = append(ids, s.RegistrationID)
		}
	}
	if len(ids) != total || ids[0] != "dev-00" || ids[total-1] != "dev-22" {
		t.Errorf("got %d items %v", len(ids), ids)
	}
	mu.Lock()
	if want := []string{"", "5", "10", "15", "20"}; fmt.Sprint(requests) != fmt.Sprint(want) {
		t.Errorf("continuation tokens sent %q, want %q", requests, want)
	}
	mu.Unlock()

	// Resuming from a token starts there.
	pager = c.NewRegistrationStatePager("grp", &PagerOptions{PageSize: 10, ContinuationToken: "20", Prefetch: prefetch})
	page, err := pager.NextPage(context.Background())
	if err != nil || len(page.Items) != 3 || page.ContinuationToken != "" || pager.More() {
		t.Errorf("resume: %d items, token %q, err %v", len(page.Items), page.ContinuationToken, err)
	}

	// A prefetch cut short by its caller's context is fetched again.
	ctx, cancel := context.WithCancel(context.Background())
	pager = c.NewRegistrationStatePager("grp", &PagerOptions{PageSize: 10, Prefetch: prefetch})
	if _, err := pager.NextPage(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	page, err = pager.NextPage(context.Background())
	if err != nil || len(page.Items) != 10 || page.Items[0].RegistrationID != "dev-10" {
		t.Errorf("after a cancelled context: %d items, err %v", len(page.Items), err)
	}
}

func TestRetriesThrottlingHonouringRetryAfter(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, ErrorDetails{ErrorCode: 429001, Message: "throttled"})
		case 2:
			writeJSON(w, 503, ErrorDetails{ErrorCode: 503000, Message: "busy"})
		default:
			writeJSON(w, 200, EnrollmentGroup{EnrollmentGroupID: "g"})
		}
	}, nil)
	start := time.Now()
	if _, err := c.GetEnrollmentGroup(context.Background(), "g"); err != nil {
		t.Fatal(ErrorMessage(err))
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3", calls.Load())
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("retried after %v, before Retry-After's 1s", el)
	}
}

func TestBulkChunksAndAggregatesErrors(t *testing.T) {
	var sizes []int
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		var op BulkEnrollmentOperation
		if err := json.NewDecoder(r.Body).Decode(&op); err != nil || r.URL.Path != "/enrollments" {
			http.Error(w, "bad", 400)
			return
		}
		sizes = append(sizes, len(op.Enrollments))
		switch len(sizes) {
		case 2: // the whole call fails
			writeJSON(w, 400, ErrorDetails{ErrorCode: 400004, Message: "bad chunk", TrackingID: "t2"})
		default:
			res := BulkEnrollmentOperationResult{IsSuccessful: true}
			for _, e := range op.Enrollments {
				if strings.HasSuffix(e.RegistrationID, "-7") {
					res.IsSuccessful = false
					res.Errors = append(res.Errors, BulkEnrollmentOperationError{RegistrationID: e.RegistrationID, ErrorCode: 409201, ErrorStatus: "exists"})
				}
			}
			writeJSON(w, 200, res)
		}
	}, func(o *ClientOptions) { o.Retry.MaxRetries = -1 })

	var items []IndividualEnrollment
	for i := range 25 {
		items = append(items, IndividualEnrollment{RegistrationID: fmt.Sprintf("dev-%d", i), Attestation: AttestationMechanism{Type: AttestationSymmetricKey}})
	}
	res, err := c.RunEnrollmentBulk(context.Background(), BulkEnrollmentOperation{Mode: BulkCreate, Enrollments: items})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Errorf("chunk sizes %v", sizes)
	}
	// dev-7 fails alone; dev-10..19 fail with their call; dev-27 does not exist.
	if res.IsSuccessful || len(res.Errors) != 11 {
		t.Fatalf("result %+v", res)
	}
	if e := res.Errors[0]; e.RegistrationID != "dev-7" || e.ErrorCode != 409201 {
		t.Errorf("first error %+v", e)
	}
	if e := res.Errors[1]; e.RegistrationID != "dev-10" || e.ErrorCode != 400004 || !strings.Contains(e.ErrorStatus, "bad chunk") {
		t.Errorf("chunk error %+v", e)
	}
}

func TestUntrustedServerFailsFastWithHint(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c, err := NewClientFromConnectionString(fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s",
		strings.TrimPrefix(srv.URL, "https://"), testKeyName, testKeyB64), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.GetEnrollmentGroup(context.Background(), "g")
	if err == nil || !strings.Contains(ErrorMessage(err), "--ca-file") {
		t.Fatalf("got %v", err)
	}
	if el := time.Since(start); el > 400*time.Millisecond {
		t.Errorf("took %v: a certificate error was retried", el)
	}
}

func TestBulkStopsWhenCredentialsAreRefused(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, 401, ErrorDetails{ErrorCode: 401002, Message: "Unauthorized"})
	}, nil)
	groups := make([]EnrollmentGroup, 25)
	for i := range groups {
		groups[i] = EnrollmentGroup{EnrollmentGroupID: fmt.Sprintf("g-%d", i), Attestation: AttestationMechanism{Type: AttestationSymmetricKey}}
	}
	res, err := c.RunEnrollmentGroupBulk(context.Background(), BulkEnrollmentGroupOperation{Mode: BulkCreate, EnrollmentGroups: groups})
	if ErrorCodeOf(err) != 401002 || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls", err, calls.Load())
	}
	if len(res.Errors) != 25 || res.Errors[24].EnrollmentGroupID != "g-24" || res.Errors[24].ErrorCode != 401002 {
		t.Errorf("every group must be reported failed: %d errors", len(res.Errors))
	}
}

func TestBulkIsNotRetriedAfterADroppedConnection(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close() // the outcome of this call is unknown to the client
			return
		}
		writeJSON(w, 200, BulkEnrollmentOperationResult{IsSuccessful: true})
	}, nil)
	items := make([]IndividualEnrollment, 15)
	for i := range items {
		items[i] = IndividualEnrollment{RegistrationID: fmt.Sprintf("d-%d", i), Attestation: AttestationMechanism{Type: AttestationSymmetricKey}}
	}
	res, err := c.RunEnrollmentBulk(context.Background(), BulkEnrollmentOperation{Mode: BulkCreate, Enrollments: items})
	if err != nil || calls.Load() != 2 {
		t.Fatalf("err %v after %d calls; want the dropped call not retried and the next chunk sent", err, calls.Load())
	}
	if len(res.Errors) != 10 || !strings.Contains(res.Errors[0].ErrorStatus, "unknown") {
		t.Errorf("%d errors: %+v", len(res.Errors), res.Errors)
	}
}

func TestTransportRejectsNonPEM(t *testing.T) {
	if _, err := NewTransport([]byte("not a certificate")); err == nil {
		t.Fatal("accepted a CA file with no certificate")
	}
}

var _ policy.Policy = (*sasPolicy)(nil)

func TestLogToSlogRedactsTheToken(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	LogToSlog(slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer LogToSlog(nil)
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, ErrorDetails{ErrorCode: 404201, Message: "nope"})
	}, nil)
	_, _ = c.GetEnrollmentGroup(context.Background(), "g")
	mu.Lock()
	logged := buf.String()
	mu.Unlock()
	if !strings.Contains(logged, "Authorization: REDACTED") || !strings.Contains(logged, "/enrollmentGroups/g") {
		t.Errorf("log lacks the redacted request:\n%s", logged)
	}
	if strings.Contains(logged, "SharedAccessSignature") || strings.Contains(logged, "sig=") {
		t.Errorf("log carries the token:\n%s", logged)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
