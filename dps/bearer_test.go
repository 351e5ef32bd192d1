package dps

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// These tests pin the bearer side of the client on the wire; the end-to-end
// tests in cmd/dpsconsole sign in with azidentity against the emulator.

const testBearer = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJkcHMifQ.c2lnbmF0dXJl"

// scopeRecorder hands out testBearer and remembers the scopes asked for.
type scopeRecorder struct {
	mu     sync.Mutex
	scopes [][]string
}

func (s *scopeRecorder) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = append(s.scopes, o.Scopes)
	return azcore.AccessToken{Token: testBearer, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func newBearerTestClient(t *testing.T, h http.HandlerFunc, resourceID string) (*Client, *scopeRecorder) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	tr, err := NewTransport(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	if err != nil {
		t.Fatal(err)
	}
	opts := &ClientOptions{ResourceID: resourceID}
	opts.Transport = tr
	opts.Retry.MaxRetries = -1
	cred := &scopeRecorder{}
	c, err := NewClient(strings.TrimPrefix(srv.URL, "https://"), cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, cred
}

func TestBearerTokenForTheDPSScope(t *testing.T) {
	var got []string
	c, cred := newBearerTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		writeJSON(w, 200, DeviceRegistrationState{RegistrationID: "dev1"})
	}, "")
	for range 2 {
		if _, err := c.GetRegistrationState(context.Background(), "dev1"); err != nil {
			t.Fatal(ErrorMessage(err))
		}
	}
	if len(got) != 2 || got[0] != "Bearer "+testBearer || got[1] != got[0] {
		t.Errorf("Authorization headers %q, want twice %q", got, "Bearer "+testBearer)
	}
	// azcore caches the token: one request to the credential, for DPS's scope.
	if len(cred.scopes) != 1 || len(cred.scopes[0]) != 1 || cred.scopes[0][0] != "https://azure-devices-provisioning.net/.default" {
		t.Errorf("scopes asked for: %q", cred.scopes)
	}
	if !c.SignedIn() {
		t.Error("SignedIn() = false for a bearer client")
	}
}

func TestBearerRefusalNamesRoleActionAndScope(t *testing.T) {
	const resourceID = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Devices/provisioningServices/dps1"
	c, _ := newBearerTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			writeJSON(w, 401, ErrorDetails{ErrorCode: 401002, Message: "Unauthorized"})
			return
		}
		writeJSON(w, 403, ErrorDetails{ErrorCode: 403001, TrackingID: "trk-9", Message: "Principal lacks Microsoft.Devices/provisioningServices/enrollmentGroups/delete"})
	}, resourceID)
	ctx := context.Background()

	err := c.DeleteEnrollmentGroup(ctx, "g1", nil)
	var access *AccessError
	if !errors.As(err, &access) || statusOf(err) != 403 {
		t.Fatalf("got %#v, want a 403 *AccessError", err)
	}
	msg := ErrorMessage(err)
	for _, want := range []string{"403", RoleDataContributor, "Microsoft.Devices/provisioningServices/enrollmentGroups/delete", resourceID, "trk-9"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "SharedAccessKey") {
		t.Errorf("a bearer refusal talks about shared access keys: %s", msg)
	}

	_, err = c.GetEnrollmentGroup(ctx, "g1")
	msg = ErrorMessage(err)
	for _, want := range []string{"401", RoleDataReader, "Microsoft.Devices/provisioningServices/enrollmentGroups/read", resourceID, "sign in again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	for _, m := range []string{msg, err.Error()} {
		if strings.Contains(m, testBearer) {
			t.Errorf("error text carries the token: %s", m)
		}
	}
}

func TestDataActionOfEachRequest(t *testing.T) {
	for _, tc := range []struct{ method, path, action, role string }{
		{"GET", "/enrollmentGroups/g", "enrollmentGroups/read", RoleDataReader},
		{"POST", "/enrollmentGroups/query", "enrollmentGroups/read", RoleDataReader},
		{"PUT", "/enrollmentGroups/g", "enrollmentGroups/write", RoleDataContributor},
		{"POST", "/enrollmentGroups", "enrollmentGroups/write", RoleDataContributor},
		{"DELETE", "/enrollments/e", "enrollments/delete", RoleDataContributor},
		{"POST", "/enrollments/e/attestationmechanism", "attestationmechanism/details/action", RoleDataContributor},
		{"POST", "/registrations/g/query", "registrationStates/read", RoleDataReader},
		{"DELETE", "/registrations/r", "registrationStates/delete", RoleDataContributor},
	} {
		action, role := dpsDataAction(tc.method, tc.path)
		if action != "Microsoft.Devices/provisioningServices/"+tc.action || role != tc.role {
			t.Errorf("%s %s: %s, %s; want …/%s, %s", tc.method, tc.path, action, role, tc.action, tc.role)
		}
	}
}

func TestBearerNeverOverPlainHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a request reached the plain-HTTP server")
	}))
	defer srv.Close()
	c, err := NewClient(strings.TrimPrefix(srv.URL, "http://"), &scopeRecorder{}, &ClientOptions{Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetEnrollmentGroup(context.Background(), "g"); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("got %v, want a refusal to send a token without TLS", err)
	}
}

func TestLogRedactsTheBearerToken(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	LogToSlog(slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer LogToSlog(nil)
	c, _ := newBearerTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 403, ErrorDetails{ErrorCode: 403001, Message: "no"})
	}, "")
	_, _ = c.GetEnrollmentGroup(context.Background(), "g")
	mu.Lock()
	logged := buf.String()
	mu.Unlock()
	if !strings.Contains(logged, "Authorization: REDACTED") {
		t.Errorf("log lacks the redacted request:\n%s", logged)
	}
	if strings.Contains(logged, testBearer) || strings.Contains(logged, "Bearer ") {
		t.Errorf("log carries the token:\n%s", logged)
	}
}

func TestNewClientRefusesABadHost(t *testing.T) {
	for _, host := range []string{"", "https://x.azure-devices-provisioning.net", "x/y"} {
		if _, err := NewClient(host, &scopeRecorder{}, nil); err == nil {
			t.Errorf("NewClient(%q) accepted it", host)
		}
	}
	if _, err := NewClient("x", nil, nil); err == nil {
		t.Error("NewClient accepted a nil credential")
	}
}
