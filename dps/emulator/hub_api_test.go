package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// FuzzServeHub throws arbitrary requests at a hub listener: every answer is
// a 204 (accepted telemetry or delete) or JSON in IoT Hub's shape, never an
// internal error or a panic.
func FuzzServeHub(f *testing.F) {
	e := startTest(f, Options{Seed: "none", HubAddrs: []string{"127.0.0.1:0"}})
	h := e.hubs[0]
	dev := assignment{rec: registration{DeviceRegistrationState: dps.DeviceRegistrationState{RegistrationID: "dev", Status: dps.StatusAssigned}},
		device: &hubDevice{Hub: h.Index, DeviceID: "dev", PrimaryKey: keys.GenerateKey().Base64(), Tags: `{"site":"oslo"}`}}
	if _, err := e.store.commitAssignment(f.Context(), dev); err != nil {
		f.Fatal(err)
	}
	svc := keys.SignSAS(h.HostName, h.key, h.PolicyName, time.Now().Add(time.Hour))
	f.Add("GET", "/devices/dev", svc, "", "")
	f.Add("GET", "/twins/dev", svc, "", "")
	f.Add("GET", "/twins/nobody", svc, "", "")
	f.Add("POST", "/devices/query", svc, `{"query":"SELECT * FROM devices"}`, "bm90LWEtdG9rZW4")
	f.Add("GET", "/devices", svc, "", "")
	f.Add("POST", "/devices/dev/messages/events", svc, "hello", "")
	f.Add("DELETE", "/devices/nobody", svc, "", "")
	f.Add("POST", "/devices/dev/messages/events", "SharedAccessSignature sr=x&sig=&se=1", "", "")
	f.Fuzz(func(t *testing.T, method, path, auth, body, continuation string) {
		r, err := http.NewRequest(method, "https://"+h.HostName+"/", strings.NewReader(body))
		if err != nil {
			return
		}
		u, err := url.Parse(path)
		if err != nil || u.Path == "" || strings.Contains(u.Path, "dev") && method == http.MethodDelete {
			return // keep the one device for the other inputs
		}
		r.URL.Path = u.Path
		r.Header.Set("Authorization", auth)
		r.Header.Set("x-ms-continuation", continuation)
		w := httptest.NewRecorder()
		e.serveHub(h, w, r)
		if w.Code == http.StatusNoContent {
			return
		}
		if w.Code >= 500 || w.Code < 200 {
			t.Fatalf("%s %q: HTTP %d %s", method, path, w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %q: HTTP %d with Content-Type %q and body %q", method, path, w.Code, ct, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("iothub-errorcode") == "" {
			t.Fatalf("%s %q: HTTP %d without iothub-errorcode", method, path, w.Code)
		}
	})
}

// TestHubDeviceTokenForms: hub device tokens carry no skn and are verified
// over the literal sr, whichever way the SDK encoded it (dps-protocol.md §8).
func TestHubDeviceTokenForms(t *testing.T) {
	e := startTest(t, Options{Seed: "none", HubAddrs: []string{"127.0.0.1:0"}})
	h := e.hubs[0]
	key := keys.GenerateKey()
	dev := assignment{rec: registration{DeviceRegistrationState: dps.DeviceRegistrationState{RegistrationID: "dev-1", Status: dps.StatusAssigned}},
		device: &hubDevice{Hub: h.Index, DeviceID: "dev-1", PrimaryKey: key.Base64()}}
	if _, err := e.store.commitAssignment(t.Context(), dev); err != nil {
		t.Fatal(err)
	}
	resource := h.HostName + "/devices/dev-1"
	token := func(sr string, k keys.Key, skn string, ttl time.Duration) string {
		se := strconv.FormatInt(time.Now().Add(ttl).Unix(), 10)
		m := hmac.New(sha256.New, k.Bytes())
		m.Write([]byte(sr + "\n" + se))
		tok := "SharedAccessSignature sr=" + sr + "&sig=" + url.QueryEscape(base64.StdEncoding.EncodeToString(m.Sum(nil))) + "&se=" + se
		if skn != "" {
			tok += "&skn=" + skn
		}
		return tok
	}
	send := func(method, path, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "https://"+h.HostName+path+"?api-version=2021-04-12", strings.NewReader("hello"))
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		e.serveHub(h, w, r)
		return w
	}
	enc := url.QueryEscape(resource) // Node encodeURIComponent and Python: %2F (and %3A for the port)
	for name, sr := range map[string]string{
		"node/python %2F": enc,
		"c %2f":           strings.ToLower(enc),
		"unencoded":       resource,
		"upper-case host": strings.ToUpper(h.HostName) + "/devices/dev-1",
	} {
		if w := send("POST", "/devices/dev-1/messages/events", token(sr, key, "", time.Hour)); w.Code != http.StatusNoContent {
			t.Errorf("%s: HTTP %d %s, want 204", name, w.Code, w.Body)
		}
	}
	for name, auth := range map[string]string{
		"skn=registration": token(enc, key, "registration", time.Hour),
		"expired":          token(enc, key, "", -time.Minute),
		"other key":        token(enc, keys.GenerateKey(), "", time.Hour),
		"other device":     token(url.QueryEscape(h.HostName+"/devices/dev-2"), key, "", time.Hour),
	} {
		if w := send("POST", "/devices/dev-1/messages/events", auth); w.Code != http.StatusUnauthorized || w.Header().Get("iothub-errorcode") != "IotHubUnauthorizedAccess" {
			t.Errorf("%s: HTTP %d %s, want 401 IotHubUnauthorizedAccess", name, w.Code, w.Body)
		}
	}
	if d, err := e.HubDevice(t.Context(), h.HostName, "dev-1"); err != nil || d.MessageCount != 4 {
		t.Errorf("message count %d (%v), want 4", d.MessageCount, err)
	}

	// Registry calls need the hub's policy name in skn.
	if w := send("GET", "/devices/dev-1", keys.SignSAS(h.HostName, h.key, h.PolicyName, time.Now().Add(time.Hour))); w.Code != http.StatusOK {
		t.Errorf("registry GET with %s: HTTP %d %s", h.PolicyName, w.Code, w.Body)
	}
	for _, skn := range []string{"registryRead", ""} {
		if w := send("GET", "/devices/dev-1", keys.SignSAS(h.HostName, h.key, skn, time.Now().Add(time.Hour))); w.Code != http.StatusUnauthorized {
			t.Errorf("registry GET with skn %q: HTTP %d %s, want 401", skn, w.Code, w.Body)
		}
	}
}

// TestHubChecksTokenBeforeDevice: a caller without a valid token cannot
// learn which device IDs exist: a wrong key gets the same 401 for an
// existing and a missing device, an expired token says "expired" either way,
// and only a caller holding the hub's policy key hears DeviceNotFound.
func TestHubChecksTokenBeforeDevice(t *testing.T) {
	e := startTest(t, Options{Seed: "none", HubAddrs: []string{"127.0.0.1:0"}})
	h := e.hubs[0]
	dev := assignment{rec: registration{DeviceRegistrationState: dps.DeviceRegistrationState{RegistrationID: "dev-1", Status: dps.StatusAssigned}},
		device: &hubDevice{Hub: h.Index, DeviceID: "dev-1", PrimaryKey: keys.GenerateKey().Base64()}}
	if _, err := e.store.commitAssignment(t.Context(), dev); err != nil {
		t.Fatal(err)
	}
	send := func(id, auth string) (int, string, string) {
		r := httptest.NewRequest("POST", "https://"+h.HostName+"/devices/"+id+"/messages/events?api-version=2021-04-12", strings.NewReader("hello"))
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		e.serveHub(h, w, r)
		var body struct{ Message string }
		json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, w.Header().Get("iothub-errorcode"), strings.ReplaceAll(body.Message, id, "{id}")
	}
	sign := func(id string, k keys.Key, ttl time.Duration) string {
		return keys.SignSAS(h.HostName+"/devices/"+id, k, "", time.Now().Add(ttl))
	}
	other := keys.GenerateKey()
	c1, e1, m1 := send("dev-1", sign("dev-1", other, time.Hour))
	c2, e2, m2 := send("ghost", sign("ghost", other, time.Hour))
	if c1 != http.StatusUnauthorized || c1 != c2 || e1 != e2 || m1 != m2 {
		t.Errorf("wrong key: existing device %d %s %q, missing device %d %s %q; want the same 401", c1, e1, m1, c2, e2, m2)
	}
	if c, _, m := send("ghost", sign("ghost", other, -time.Minute)); c != http.StatusUnauthorized || !strings.Contains(m, "expired") {
		t.Errorf("expired token for a missing device: %d %q, want 401 saying it expired", c, m)
	}
	svc := keys.SignSAS(h.HostName, h.key, h.PolicyName, time.Now().Add(time.Hour))
	if c, code, m := send("ghost", svc); c != http.StatusNotFound || code != "DeviceNotFound" {
		t.Errorf("hub policy token for a missing device: %d %s %q, want 404 DeviceNotFound", c, code, m)
	}
}
