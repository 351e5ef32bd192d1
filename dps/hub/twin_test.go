package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

func TestTwinUpdateAndReplace(t *testing.T) {
	_, reg, _, _ := provisioned(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tw, err := reg.GetTwin(ctx, "dev-00")
	if err != nil {
		t.Fatal(err)
	}
	etag := azcore.ETag(tw.ETag)
	up, err := reg.UpdateTwin(ctx, "dev-00", hub.TwinPatch{Tags: dps.TwinCollection{"site": "oslo"},
		Properties: &hub.TwinPatchProperties{Desired: dps.TwinCollection{"interval": 10, "mode": "eco"}}}, &hub.TwinWriteOptions{IfMatch: &etag})
	if err != nil {
		t.Fatal(err)
	}
	if up.Tags["site"] != "oslo" || up.Properties.Desired["interval"] != 10.0 || up.Properties.Desired["$version"] != 2.0 || up.ETag == tw.ETag {
		t.Fatalf("updated twin = %+v %+v", up, up.Properties)
	}
	// A nil removes a property; the stale ETag is refused.
	if _, err := reg.UpdateTwin(ctx, "dev-00", hub.TwinPatch{Tags: dps.TwinCollection{"site": nil}}, &hub.TwinWriteOptions{IfMatch: &etag}); !hub.IsPreconditionFailed(err) {
		t.Fatalf("stale ETag: %v, want 412", err)
	}
	up, err = reg.UpdateTwin(ctx, "dev-00", hub.TwinPatch{Properties: &hub.TwinPatchProperties{Desired: dps.TwinCollection{"mode": nil}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := up.Properties.Desired["mode"]; ok || up.Properties.Desired["interval"] != 10.0 || up.Properties.Desired["$version"] != 3.0 {
		t.Errorf("after removing mode: desired %v", up.Properties.Desired)
	}
	rep, err := reg.ReplaceTwin(ctx, "dev-00", hub.TwinPatch{Tags: dps.TwinCollection{"only": true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tags) != 1 || rep.Tags["only"] != true || len(rep.Properties.Desired) != 1 {
		t.Errorf("replaced twin: tags %v desired %v, want only the tag and $version", rep.Tags, rep.Properties.Desired)
	}
	var re *azcore.ResponseError
	if _, err := reg.UpdateTwin(ctx, "dev-00", hub.TwinPatch{Tags: dps.TwinCollection{"a.b": 1}}, nil); !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || re.ErrorCode != "ArgumentInvalid" {
		t.Errorf("bad key: %v, want 400 ArgumentInvalid", err)
	}
	if _, err := reg.UpdateTwin(ctx, "nobody", hub.TwinPatch{}, nil); !hub.IsNotFound(err) {
		t.Errorf("missing device: %v, want 404", err)
	}
}

func TestInvokeMethodOnDisconnectedDevice(t *testing.T) {
	_, reg, _, _ := provisioned(t, 1)
	ctx := t.Context()
	_, err := reg.InvokeMethod(ctx, "dev-00", "reboot", json.RawMessage(`{"delay":1}`), nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound || re.ErrorCode != "DeviceNotOnline" || !strings.Contains(err.Error(), "404103") {
		t.Fatalf("method on a disconnected device: %v, want 404 DeviceNotOnline 404103", err)
	}
	for name, c := range map[string]struct {
		name    string
		payload string
		opts    hub.MethodOptions
		want    string
	}{
		"no name":       {"", "", hub.MethodOptions{}, "method name is required"},
		"bad payload":   {"m", "{", hub.MethodOptions{}, "not valid JSON"},
		"short timeout": {"m", "", hub.MethodOptions{ResponseTimeout: time.Second}, "5s to 5m0s"},
		"fractional":    {"m", "", hub.MethodOptions{ResponseTimeout: 5500 * time.Millisecond}, "whole seconds"},
	} {
		var p json.RawMessage
		if c.payload != "" {
			p = json.RawMessage(c.payload)
		}
		if _, err := reg.InvokeMethod(ctx, "dev-00", c.name, p, &c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

// bodyRecorder keeps each request and its body.
type bodyRecorder struct {
	headerRecorder
	bodies []string
}

func (r *bodyRecorder) Do(req *policy.Request) (*http.Response, error) {
	b := ""
	if req.Raw().GetBody != nil {
		rc, _ := req.Raw().GetBody()
		raw, _ := io.ReadAll(rc)
		b = string(raw)
		req.RewindBody() // GetBody shares azcore's seeker
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.mu.Unlock()
	return r.headerRecorder.Do(req)
}

// TestTwinAndMethodRequestsAreWhatNodeSends checks the requests against
// azure-iothub 1.16.6 (dist/registry.js getTwin/updateTwin,
// device_method.js invokeOn): api-version 2021-04-12, service SAS, paths
// with the ID URI-encoded, Content-Type application/json; charset=utf-8,
// If-Match the quoted etag, and the method body's four fields.
func TestTwinAndMethodRequestsAreWhatNodeSends(t *testing.T) {
	em, _, _, opts := provisioned(t, 1)
	ctx := t.Context()
	rec := &bodyRecorder{}
	opts.PerRetryPolicies = []policy.Policy{rec}
	cs := em.Env().HubConnectionStrings[0]
	reg, err := hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	tw, err := reg.GetTwin(ctx, "dev-00")
	if err != nil {
		t.Fatal(err)
	}
	etag := azcore.ETag(tw.ETag)
	if _, err := reg.UpdateTwin(ctx, "dev-00", hub.TwinPatch{Tags: dps.TwinCollection{"a": nil}, Properties: &hub.TwinPatchProperties{Desired: dps.TwinCollection{"x": 1}}},
		&hub.TwinWriteOptions{IfMatch: &etag}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.ReplaceTwin(ctx, "dev-00", hub.TwinPatch{Tags: dps.TwinCollection{"b": 2}}, nil); err != nil {
		t.Fatal(err)
	}
	reg.InvokeMethod(ctx, "dev-00", "reboot", nil, &hub.MethodOptions{ResponseTimeout: 45 * time.Second, ConnectTimeout: 5 * time.Second})
	// An ID that needs encoding is encoded in the path (404 here).
	reg.GetTwin(ctx, "a b#c")

	policyCS, _ := keys.ParseServiceConnectionString(cs)
	host := reg.Host()
	want := []struct{ method, path, ifMatch, body string }{
		{"GET", "/twins/dev-00", "", ""},
		{"PATCH", "/twins/dev-00", `"` + tw.ETag + `"`, `{"tags":{"a":null},"properties":{"desired":{"x":1}}}`},
		{"PUT", "/twins/dev-00", `"*"`, `{"tags":{"b":2}}`},
		{"POST", "/twins/dev-00/methods", "", `{"methodName":"reboot","responseTimeoutInSeconds":45,"connectTimeoutInSeconds":5,"payload":null}`},
		{"GET", "/twins/a%20b%23c", "", ""},
	}
	if len(rec.reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(rec.reqs), len(want))
	}
	for i, w := range want {
		r := rec.reqs[i]
		sas, err := keys.ParseSAS(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if err := sas.Verify(policyCS.SharedAccessKey, host, time.Now()); err != nil || sas.KeyName != policyCS.SharedAccessKeyName || sas.RawResource != url.QueryEscape(host) {
			t.Errorf("request %d: token sr %q skn %q: %v", i, sas.RawResource, sas.KeyName, err)
		}
		if r.Method != w.method || r.URL.EscapedPath() != w.path || r.URL.Query().Get("api-version") != "2021-04-12" || r.Header.Get("If-Match") != w.ifMatch {
			t.Errorf("request %d: %s %s If-Match %q, want %s %s If-Match %q", i, r.Method, r.URL, r.Header.Get("If-Match"), w.method, w.path, w.ifMatch)
		}
		if w.body != "" {
			if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("request %d: Content-Type %q", i, ct)
			}
			if !sameJSON(rec.bodies[i], w.body) {
				t.Errorf("request %d: body %s, want %s", i, rec.bodies[i], w.body)
			}
		}
	}
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}
