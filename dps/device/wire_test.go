package device_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/keys"
)

// recorder is a per-retry policy that keeps a copy of every request sent.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, query, auth, contentType string
	body                                   []byte
}

func (r *recorder) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	rec := recorded{method: raw.Method, path: raw.URL.EscapedPath(), query: raw.URL.RawQuery, auth: raw.Header.Get("Authorization"), contentType: raw.Header.Get("Content-Type")}
	if b := req.Body(); b != nil {
		rec.body, _ = io.ReadAll(b)
		if err := req.RewindBody(); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	return req.Next()
}

// TestRegisterSendsWhatTheSDKsSend checks the device client's requests
// against dps-protocol.md §3.1/§9a: an SDK-proven api-version, sr =
// url.QueryEscape(scope/registrations/id) as the Python SDK sends it,
// skn=registration, a JSON body with the registration ID, and the
// operation polled under the same registration.
func TestRegisterSendsWhatTheSDKsSend(t *testing.T) {
	f := start(t, 300*time.Millisecond)
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "g"})
	rid := "sn-007-888"
	key := derive(t, gk, rid)
	rec := &recorder{}
	opts := f.options
	opts.PerRetryPolicies = []policy.Policy{rec}
	env := f.em.Env()
	dev, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: opts, ProvisioningHost: env.DeviceEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	p, err := dev.BeginRegister(t.Context(), rid, key, &device.RegisterOptions{Payload: json.RawMessage(`{"modelId":"dtmi:x;1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollUntilDone(t.Context(), &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}

	if len(rec.reqs) < 2 {
		t.Fatalf("%d requests, want a register and at least one poll", len(rec.reqs))
	}
	base := "/" + env.IDScope + "/registrations/" + rid
	for i, r := range rec.reqs {
		q, _ := url.ParseQuery(r.query)
		if v := q.Get("api-version"); v != "2019-03-31" && v != "2021-06-01" {
			t.Errorf("request %d: api-version %q is not one the SDKs use", i, v)
		}
		sas, err := keys.ParseSAS(r.auth)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if sas.KeyName != "registration" || sas.RawResource != url.QueryEscape(env.IDScope+"/registrations/"+rid) {
			t.Errorf("request %d: skn %q, sr %q; want registration and the Python SDK's %%2F form", i, sas.KeyName, sas.RawResource)
		}
		if err := sas.Verify(key, env.IDScope+"/registrations/"+rid, time.Now()); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
		if i == 0 {
			var body map[string]json.RawMessage
			if r.method != http.MethodPut || r.path != base+"/register" || r.contentType != "application/json; charset=utf-8" ||
				json.Unmarshal(r.body, &body) != nil || string(body["registrationId"]) != `"`+rid+`"` || string(body["payload"]) != `{"modelId":"dtmi:x;1"}` {
				t.Errorf("register: %s %s, Content-Type %q, body %s", r.method, r.path, r.contentType, r.body)
			}
		} else if r.method != http.MethodGet || !strings.HasPrefix(r.path, base+"/operations/") {
			t.Errorf("poll %d: %s %s", i, r.method, r.path)
		}
	}
}
