package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
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
