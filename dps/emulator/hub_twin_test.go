package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	hubapi "github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// twinHub is one emulated hub with one device "dev" on it, called through
// serveHub with the hub's service SAS.
type twinHub struct {
	t testing.TB
	e *Emulator
	h *hub
}

func newTwinHub(t testing.TB, opts Options) *twinHub {
	t.Helper()
	opts.Seed, opts.HubAddrs = "none", []string{"127.0.0.1:0"}
	e := startTest(t, opts)
	th := &twinHub{t: t, e: e, h: e.hubs[0]}
	if _, err := th.e.store.hubDevice(t.Context(), th.h.Index, "dev"); err == nil {
		return th // a restarted data dir keeps it
	}
	dev := assignment{rec: registration{DeviceRegistrationState: dps.DeviceRegistrationState{RegistrationID: "dev", Status: dps.StatusAssigned}},
		device: &hubDevice{Hub: th.h.Index, DeviceID: "dev", PrimaryKey: keys.GenerateKey().Base64(),
			Tags: `{"site":"oslo","floor":2}`, Desired: `{"interval":30,"net":{"ssid":"a","band":5}}`}}
	if _, err := e.store.commitAssignment(t.Context(), dev); err != nil {
		t.Fatal(err)
	}
	return th
}

// do sends one request; hdr are header name/value pairs.
func (th *twinHub) do(method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "https://"+th.h.HostName+path+"?api-version=2021-04-12", strings.NewReader(body))
	r.Header.Set("Authorization", keys.SignSAS(th.h.HostName, th.h.key, th.h.PolicyName, time.Now().Add(time.Hour)))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	th.e.serveHub(th.h, w, r)
	return w
}

// twin reads the twin and fails unless the answer is 200.
func (th *twinHub) twin() hubapi.Twin {
	th.t.Helper()
	w := th.do("GET", "/twins/dev", "")
	if w.Code != http.StatusOK {
		th.t.Fatalf("GET /twins/dev: HTTP %d %s", w.Code, w.Body)
	}
	tw := decode[hubapi.Twin](th.t, w.Body.Bytes())
	if got := w.Header().Get("ETag"); got != `"`+tw.ETag+`"` {
		th.t.Errorf("ETag header %q, body etag %q", got, tw.ETag)
	}
	return tw
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTwinPatchMergesAndVersions(t *testing.T) {
	th := newTwinHub(t, Options{})
	tw := th.twin()
	if tw.Version != 1 || jsonOf(tw.Properties.Desired) != `{"$version":1,"interval":30,"net":{"band":5,"ssid":"a"}}` ||
		jsonOf(tw.Properties.Reported) != `{"$version":1}` {
		t.Fatalf("first twin: version %d desired %s reported %s", tw.Version, jsonOf(tw.Properties.Desired), jsonOf(tw.Properties.Reported))
	}

	// What Node's Twin.update sends: the patch, If-Match the quoted etag.
	w := th.do("PATCH", "/twins/dev", `{"tags":{"floor":null,"room":"b1"},"properties":{"desired":{"net":{"band":null,"ch":11},"mode":"eco","big":4503599627370495}}}`,
		"If-Match", `"`+tw.ETag+`"`, "Content-Type", "application/json; charset=utf-8")
	if w.Code != http.StatusOK {
		t.Fatalf("PATCH: HTTP %d %s", w.Code, w.Body)
	}
	patched := decode[hubapi.Twin](t, w.Body.Bytes())
	delete(patched.Properties.Desired, "big")
	if jsonOf(patched.Tags) != `{"room":"b1","site":"oslo"}` || !strings.Contains(w.Body.String(), `"big":4503599627370495`) ||
		jsonOf(patched.Properties.Desired) != `{"$version":2,"interval":30,"mode":"eco","net":{"ch":11,"ssid":"a"}}` {
		t.Errorf("patched: tags %s desired %s", jsonOf(patched.Tags), jsonOf(patched.Properties.Desired))
	}
	if patched.Version != 2 || patched.ETag == tw.ETag || th.twin().ETag != patched.ETag {
		t.Errorf("patched: version %d etag %q (was %q), want version 2 and a new etag that GET shows", patched.Version, patched.ETag, tw.ETag)
	}

	// The old ETag is refused and changes nothing.
	w = th.do("PATCH", "/twins/dev", `{"tags":{"lost":true}}`, "If-Match", `"`+tw.ETag+`"`)
	if w.Code != http.StatusPreconditionFailed || w.Header().Get("iothub-errorcode") != "PreconditionFailed" || !strings.Contains(w.Body.String(), "412001") {
		t.Errorf("stale If-Match: HTTP %d %s %s, want 412 PreconditionFailed 412001", w.Code, w.Header().Get("iothub-errorcode"), w.Body)
	}
	if now := th.twin(); now.Version != 2 || now.Tags["lost"] != nil {
		t.Errorf("a refused patch changed the twin: %+v", now)
	}

	// Tags only: the desired $version stays; "*" matches any version.
	w = th.do("PATCH", "/twins/dev", `{"tags":{"room":"b2"}}`, "If-Match", `"*"`)
	if tw := decode[hubapi.Twin](t, w.Body.Bytes()); w.Code != http.StatusOK || tw.Version != 3 || jsonOf(tw.Properties.Desired["$version"]) != "2" {
		t.Errorf("tags patch: HTTP %d version %d desired %s", w.Code, tw.Version, jsonOf(tw.Properties.Desired))
	}
	// A patch that changes nothing bumps nothing.
	w = th.do("PATCH", "/twins/dev", `{"tags":{"room":"b2"},"properties":{"desired":{"gone":null}}}`)
	if tw := decode[hubapi.Twin](t, w.Body.Bytes()); w.Code != http.StatusOK || tw.Version != 3 {
		t.Errorf("no-op patch: HTTP %d version %d, want 3", w.Code, tw.Version)
	}

	// PUT replaces tags and desired; a twin read back (with $version) is accepted.
	w = th.do("PUT", "/twins/dev", `{"deviceId":"dev","tags":{"only":1},"properties":{"desired":{"$version":3,"rate":5},"reported":null}}`, "If-Match", `"`+th.twin().ETag+`"`)
	replaced := decode[hubapi.Twin](t, w.Body.Bytes())
	if w.Code != http.StatusOK || jsonOf(replaced.Tags) != `{"only":1}` || jsonOf(replaced.Properties.Desired) != `{"$version":3,"rate":5}` || replaced.Version != 4 {
		t.Errorf("PUT: HTTP %d tags %s desired %s version %d", w.Code, jsonOf(replaced.Tags), jsonOf(replaced.Properties.Desired), replaced.Version)
	}
}

func TestTwinBadWritesAreRefusedAndLoseNothing(t *testing.T) {
	th := newTwinHub(t, Options{})
	before := jsonOf(th.twin())
	for name, c := range map[string]struct{ body, want string }{
		"not json":        {`{"tags":`, "not a twin JSON object"},
		"tags not object": {`{"tags":[1]}`, "tags must be a JSON object"},
		"dot in key":      {`{"properties":{"desired":{"a.b":1}}}`, `key \"a.b\"`},
		"dollar in key":   {`{"tags":{"$x":1}}`, `key \"$x\"`},
		"space in key":    {`{"tags":{"a":{"b c":1}}}`, `key \"b c\"`},
		"reported":        {`{"properties":{"reported":{"x":1}}}`, "the device reports them"},
		"too deep":        {`{"tags":` + strings.Repeat(`{"a":`, 11) + `1` + strings.Repeat(`}`, 11) + `}`, "deeper than"},
		"big integer":     {`{"tags":{"n":4503599627370496}}`, "twin integers are"},
		"tags too large":  {`{"tags":{"a":"` + strings.Repeat("x", maxTwinTags) + `"}}`, "tags would be"},
	} {
		w := th.do("PATCH", "/twins/dev", c.body)
		if w.Code != http.StatusBadRequest || w.Header().Get("iothub-errorcode") != "ArgumentInvalid" || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%s: HTTP %d %s, want 400 ArgumentInvalid saying %s", name, w.Code, w.Body, c.want)
		}
	}
	if after := jsonOf(th.twin()); after != before {
		t.Errorf("refused writes changed the twin:\n%s\n%s", before, after)
	}
	for _, m := range []string{"PATCH", "PUT", "GET"} {
		if w := th.do(m, "/twins/nobody", `{"tags":{}}`); w.Code != http.StatusNotFound || w.Header().Get("iothub-errorcode") != "DeviceNotFound" {
			t.Errorf("%s /twins/nobody: HTTP %d %s, want 404 DeviceNotFound", m, w.Code, w.Body)
		}
	}
	r := httptest.NewRequest("PATCH", "https://"+th.h.HostName+"/twins/dev", strings.NewReader(`{"tags":{"a":1}}`))
	r.Header.Set("Authorization", keys.SignSAS(th.h.HostName, keys.GenerateKey(), th.h.PolicyName, time.Now().Add(time.Hour)))
	w := httptest.NewRecorder()
	th.e.serveHub(th.h, w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("PATCH with a wrong key: HTTP %d, want 401", w.Code)
	}
}

// TestTwinSurvivesRestartAndDiesWithItsDevice: the twin is in the database
// with the identity.
func TestTwinSurvivesRestartAndDiesWithItsDevice(t *testing.T) {
	dir := t.TempDir()
	th := newTwinHub(t, Options{DataDir: dir})
	if w := th.do("PATCH", "/twins/dev", `{"properties":{"desired":{"mode":"eco"}}}`); w.Code != http.StatusOK {
		t.Fatalf("PATCH: HTTP %d %s", w.Code, w.Body)
	}
	if err := th.e.Close(); err != nil {
		t.Fatal(err)
	}
	th = newTwinHub(t, Options{DataDir: dir})
	tw := th.twin()
	if tw.Properties.Desired["mode"] != "eco" || jsonOf(tw.Properties.Desired["$version"]) != "2" || tw.Version != 2 {
		t.Errorf("after a restart: version %d desired %s", tw.Version, jsonOf(tw.Properties.Desired))
	}
	if err := th.e.store.deleteHubDevice(context.Background(), th.h.Index, "dev", "*"); err != nil {
		t.Fatal(err)
	}
	if w := th.do("GET", "/twins/dev", ""); w.Code != http.StatusNotFound {
		t.Errorf("twin of a deleted device: HTTP %d %s, want 404", w.Code, w.Body)
	}
}

// FuzzTwinPatch: any body is either merged (200, a valid twin) or refused
// with 400 ArgumentInvalid; never a server error.
func FuzzTwinPatch(f *testing.F) {
	for _, s := range []string{`{"tags":{"a":null}}`, `{"properties":{"desired":{"x":{"y":[1,2]},"$version":9}}}`, `{"tags":{"a.b":1}}`, `null`, `[]`, `{"properties":null}`} {
		f.Add(s)
	}
	th := newTwinHub(f, Options{})
	f.Fuzz(func(t *testing.T, body string) {
		w := th.do("PATCH", "/twins/dev", body)
		switch {
		case w.Code == http.StatusOK:
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("200 with %q", w.Body)
			}
		case w.Code == http.StatusBadRequest && w.Header().Get("iothub-errorcode") == "ArgumentInvalid":
		default:
			t.Fatalf("PATCH %q: HTTP %d %s", body, w.Code, w.Body)
		}
	})
}
