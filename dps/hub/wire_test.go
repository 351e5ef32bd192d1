package hub_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// headerRecorder is a per-retry policy that keeps the headers and URL of
// every request sent.
type headerRecorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *headerRecorder) Do(req *policy.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Raw().Clone(context.Background()))
	r.mu.Unlock()
	return req.Next()
}

// TestClientsSendWhatTheSDKsSend checks the hub clients' requests against
// dps-protocol.md §8: api-version 2021-04-12 (Node azure-iothub), device
// tokens with sr = encoded {host}/devices/{id} and no skn, registry tokens
// with sr = host and skn = the policy, delete with If-Match "*" quoted.
func TestClientsSendWhatTheSDKsSend(t *testing.T) {
	em, reg, devs, opts := provisioned(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rec := &headerRecorder{}
	opts.PerRetryPolicies = []policy.Policy{rec}
	host := reg.Host()
	dc, err := hub.NewDeviceClient(host, "dev-00", devs["dev-00"], &hub.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.SendEvent(ctx, []byte(`{"n":1}`), nil); err != nil {
		t.Fatal(err)
	}
	cs := em.Env().HubConnectionStrings[0]
	svc, err := hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteDevice(ctx, "dev-00", nil); err != nil {
		t.Fatal(err)
	}
	policyCS, _ := keys.ParseServiceConnectionString(cs)

	if len(rec.reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(rec.reqs))
	}
	for i, want := range []struct {
		method, path, sr, skn, ifMatch string
		key                            keys.Key
		resource                       string
	}{
		{http.MethodPost, "/devices/dev-00/messages/events", url.QueryEscape(host + "/devices/dev-00"), "", "", devs["dev-00"], host + "/devices/dev-00"},
		{http.MethodDelete, "/devices/dev-00", url.QueryEscape(host), policyCS.SharedAccessKeyName, `"*"`, policyCS.SharedAccessKey, host},
	} {
		r := rec.reqs[i]
		sas, err := keys.ParseSAS(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if r.Method != want.method || r.URL.Path != want.path || r.URL.Query().Get("api-version") != "2021-04-12" ||
			sas.RawResource != want.sr || sas.KeyName != want.skn || r.Header.Get("If-Match") != want.ifMatch {
			t.Errorf("request %d: %s %s, sr %q skn %q If-Match %q", i, r.Method, r.URL, sas.RawResource, sas.KeyName, r.Header.Get("If-Match"))
		}
		if err := sas.Verify(want.key, want.resource, time.Now()); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if got := rec.reqs[0].Header.Get("iothub-to"); got != "/devices/dev-00/messages/events" {
		t.Errorf("telemetry iothub-to %q", got)
	}
}
