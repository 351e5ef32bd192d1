package hub_test

import (
	"context"
	"encoding/json"
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

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
)

const hubBearer = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJodWIifQ.c2ln"

type fixedToken struct{ scopes []string }

func (f *fixedToken) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.scopes = append(f.scopes, o.Scopes...)
	return azcore.AccessToken{Token: hubBearer, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// A bearer registry client asks for the IoT Hub scope, sends the token, and
// words a refusal with the role, the data action and the scope.
func TestRegistryClientSignedInNamesTheMissingRole(t *testing.T) {
	const resourceID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/h1"
	var auth []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			json.NewEncoder(w).Encode(hub.Device{DeviceID: "d1"})
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"Message": "ErrorCode:IotHubUnauthorizedAccess;Unauthorized"})
	}))
	defer srv.Close()
	tr := &http.Client{Transport: &http.Transport{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}}
	var logged syncLog
	dps.LogToSlog(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer dps.LogToSlog(nil)
	cred := &fixedToken{}
	o := &hub.RegistryOptions{ResourceID: resourceID}
	o.ClientOptions.ClientOptions = azcore.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}}
	c, err := hub.NewRegistryClient(strings.TrimPrefix(srv.URL, "https://"), cred, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.GetDevice(ctx, "d1"); err != nil {
		t.Fatal(hub.ErrorMessage(err))
	}
	err = c.DeleteDevice(ctx, "d1", nil)
	var access *dps.AccessError
	if !errors.As(err, &access) {
		t.Fatalf("got %v, want a *dps.AccessError", err)
	}
	msg := hub.ErrorMessage(err)
	for _, want := range []string{"401", hub.RoleRegistryContributor, "Microsoft.Devices/IotHubs/devices/delete", resourceID} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, hubBearer) || strings.Contains(err.Error(), hubBearer) || strings.Contains(msg, "SharedAccessKey") {
		t.Errorf("message carries the token or a SAS hint: %s", msg)
	}
	if len(auth) != 2 || auth[0] != "Bearer "+hubBearer {
		t.Errorf("Authorization headers %q", auth)
	}
	if len(cred.scopes) != 1 || cred.scopes[0] != "https://iothubs.azure.net/.default" {
		t.Errorf("scopes %q, want the IoT Hub scope once", cred.scopes)
	}
	if log := logged.String(); !strings.Contains(log, "Authorization: REDACTED") || strings.Contains(log, hubBearer) {
		t.Errorf("the log lacks the redacted header or carries the token:\n%s", log)
	}
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestHubDataActions(t *testing.T) {
	for _, tc := range []struct{ method, path, action, role string }{
		{"GET", "/devices/d", "devices/read", hub.RoleDataReader},
		{"POST", "/devices/query", "devices/read", hub.RoleDataReader},
		{"DELETE", "/devices/d", "devices/delete", hub.RoleRegistryContributor},
		{"PUT", "/devices/d", "devices/write", hub.RoleRegistryContributor},
		{"GET", "/twins/d", "twins/read", hub.RoleDataReader},
		{"PATCH", "/twins/d", "twins/write", hub.RoleTwinContributor},
		{"POST", "/twins/d/methods", "directMethods/invoke/action", hub.RoleDataContributor},
	} {
		action, role := hub.DataAction(tc.method, tc.path)
		if action != "Microsoft.Devices/IotHubs/"+tc.action || role != tc.role {
			t.Errorf("%s %s: %s, %s", tc.method, tc.path, action, role)
		}
	}
}
