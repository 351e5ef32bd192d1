package emulator

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
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

// rawDevice speaks the device API with net/http, so tests can send exactly
// what each official SDK sends.
type rawDevice struct {
	t          testing.TB
	host       string
	scope, rid string
	key        keys.Key
	client     *http.Client
	sr         func(scope, rid string) string // the literal sr the SDK puts in its token
	skn        string                         // "" leaves skn out
	expires    time.Duration                  // token lifetime from now
}

// sr styles of the official SDKs (dps-protocol.md §2.4).
var (
	srNode   = func(scope, rid string) string { return scope + "/registrations/" + rid }
	srPython = func(scope, rid string) string { return url.QueryEscape(scope + "/registrations/" + rid) }
	srC      = func(scope, rid string) string {
		return strings.ReplaceAll(url.QueryEscape(scope+"/registrations/"+rid), "%2F", "%2f")
	}
	srDocs = func(scope, rid string) string { return strings.ToLower(srC(scope, rid)) } // "lower case URL-encoding of the lower case URI"
)

func newRawDevice(t testing.TB, e *Emulator, rid string, key keys.Key) *rawDevice {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CertPool()}}
	t.Cleanup(tr.CloseIdleConnections)
	return &rawDevice{t: t, host: e.Env().DeviceEndpoint, scope: e.Env().IDScope, rid: rid, key: key,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, sr: srNode, skn: "registration", expires: time.Hour}
}

// token signs the literal sr, as the SDKs do.
func (d *rawDevice) token() string {
	sr := d.sr(d.scope, d.rid)
	se := strconv.FormatInt(time.Now().Add(d.expires).Unix(), 10)
	m := hmac.New(sha256.New, d.key.Bytes())
	m.Write([]byte(sr + "\n" + se))
	sig := url.QueryEscape(base64.StdEncoding.EncodeToString(m.Sum(nil)))
	tok := "SharedAccessSignature sr=" + sr + "&sig=" + sig
	if d.skn != "" {
		tok += "&skn=" + d.skn
	}
	return tok + "&se=" + se
}

func (d *rawDevice) do(method, path, body string) (*http.Response, []byte) {
	d.t.Helper()
	req, err := http.NewRequest(method, "https://"+d.host+"/"+d.scope+"/registrations/"+d.rid+path, bytes.NewBufferString(body))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", d.token())
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := d.client.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp, b
}

// register does PUT register and polls (GET with a "{}" body, as Node does)
// until the status is final.
func (d *rawDevice) register(body string) dps.RegistrationOperationStatus {
	d.t.Helper()
	resp, b := d.do(http.MethodPut, "/register?api-version=2019-03-31", body)
	for {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			d.t.Fatalf("Content-Type %q", ct)
		}
		var st dps.RegistrationOperationStatus
		if err := json.Unmarshal(b, &st); err != nil {
			d.t.Fatalf("HTTP %d body %s: %v", resp.StatusCode, b, err)
		}
		if resp.StatusCode == http.StatusOK {
			return st
		}
		// Retry-After in whole seconds: Python parses it with int().
		n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusAccepted || st.Status != dps.StatusAssigning || err != nil || n < 0 {
			d.t.Fatalf("HTTP %d %s Retry-After %q", resp.StatusCode, b, resp.Header.Get("Retry-After"))
		}
		time.Sleep(time.Duration(n) * time.Second)
		resp, b = d.do(http.MethodGet, "/operations/"+st.OperationID+"?api-version=2021-06-01", "{}")
	}
}

func createGroup(t testing.TB, e *Emulator, g map[string]any) keys.Key {
	t.Helper()
	k := keys.GenerateKey()
	g["attestation"] = map[string]any{"type": "symmetricKey", "symmetricKey": map[string]any{"primaryKey": k.Base64(), "secondaryKey": keys.GenerateKey().Base64()}}
	newSvc(t, e).must(http.StatusOK, http.MethodPut, "/enrollmentGroups/"+g["enrollmentGroupId"].(string)+"?api-version=2021-10-01", g)
	return k
}

func TestDeviceAPIAcceptsEverySDKShape(t *testing.T) {
	e := startTest(t, Options{Seed: "none", AssignmentDelay: 10 * time.Millisecond})
	gk := createGroup(t, e, map[string]any{"enrollmentGroupId": "g"})
	for i, c := range []struct {
		name  string
		sr    func(string, string) string
		body  string
		scope func(string) string // the scope as the device writes it in the path
	}{
		{"node, payload object", srNode, `{"registrationId":"%s","payload":{"modelId":"dtmi:x;1"}}`, nil},
		{"python, payload null", srPython, `{"payload": null, "registrationId": "%s"}`, nil},
		{"c, no payload", srC, `{ "registrationId":"%s" }`, nil},
		{"docs, all lower case", srDocs, `{"registrationId":"%s"}`, strings.ToLower},
		{"python, upper-case scope", srPython, `{"registrationId":"%s"}`, strings.ToUpper},
		{"empty body", srNode, ``, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			rid := "dev-" + strconv.Itoa(i)
			k, _ := keys.DeriveDeviceKey(gk, rid)
			d := newRawDevice(t, e, rid, k)
			d.sr = c.sr
			if c.scope != nil {
				d.scope = c.scope(d.scope)
			}
			body := c.body
			if body != "" {
				body = strings.Replace(body, "%s", rid, 1)
			}
			st := d.register(body)
			if st.Status != dps.StatusAssigned || st.RegistrationState == nil || st.RegistrationState.AssignedHub == "" || st.RegistrationState.DeviceID != rid {
				t.Fatalf("final status %+v", st)
			}
			// A full registrationState, as the real service's final poll has it.
			if rs := st.RegistrationState; rs.RegistrationID != rid || rs.Status != dps.StatusAssigned || rs.Substatus != dps.SubstatusInitialAssignment ||
				rs.ETag == "" || rs.CreatedDateTimeUTC.IsZero() || rs.LastUpdatedDateTimeUTC.IsZero() {
				t.Errorf("registrationState %+v", rs)
			}
			if strings.Trim(st.OperationID, "abcdefABCDEF0123456789.-") != "" {
				t.Errorf("operation id %q has characters outside [A-Za-z0-9.-]", st.OperationID)
			}
			// The status lookup returns the record itself.
			resp, b := d.do(http.MethodPost, "?api-version=2019-03-31", `{"registrationId":"`+rid+`"}`)
			var rec dps.DeviceRegistrationState
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &rec) != nil || rec.AssignedHub != st.RegistrationState.AssignedHub {
				t.Fatalf("status lookup: HTTP %d %s", resp.StatusCode, b)
			}
		})
	}
}

func TestDeviceAPIRejects(t *testing.T) {
	e := startTest(t, Options{Seed: "none"})
	gk := createGroup(t, e, map[string]any{"enrollmentGroupId": "g"})
	k, _ := keys.DeriveDeviceKey(gk, "dev")
	for _, c := range []struct {
		name string
		edit func(*rawDevice)
	}{
		{"group key, not derived", func(d *rawDevice) { d.key = gk }},
		{"key of another ID", func(d *rawDevice) { d.key, _ = keys.DeriveDeviceKey(gk, "other") }},
		{"wrong scope", func(d *rawDevice) { d.scope = "0ne00000000" }},
		{"token for another ID", func(d *rawDevice) { d.sr = func(s, _ string) string { return s + "/registrations/other" } }},
		{"expired token", func(d *rawDevice) { d.expires = -time.Minute }},
		{"service policy skn", func(d *rawDevice) { d.skn = servicePolicy }},
		{"invalid registration ID", func(d *rawDevice) { d.rid = "dev."; d.key, _ = keys.DeriveDeviceKey(gk, "dev.") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newRawDevice(t, e, "dev", k)
			c.edit(d)
			resp, b := d.do(http.MethodPut, "/register?api-version=2021-10-01", `{"registrationId":"`+d.rid+`"}`)
			var ed dps.ErrorDetails
			if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(b, &ed) != nil || ed.ErrorCode != 401002 || ed.TrackingID == "" ||
				ed.Message == "" || ed.TimestampUTC.IsZero() || resp.Header.Get("x-ms-error-code") != "401002" {
				t.Fatalf("HTTP %d %s (x-ms-error-code %q), want 401 with errorCode 401002", resp.StatusCode, b, resp.Header.Get("x-ms-error-code"))
			}
			if d.rid != "dev" && !strings.Contains(ed.Message, "last character must be") {
				t.Errorf("message %q does not say what is wrong with the registration ID", ed.Message)
			}
		})
	}
}

// FuzzServeDevice throws arbitrary paths, methods, tokens and bodies at the
// device API: it must always answer with a DPS JSON body and a status a
// device SDK understands, never panic or fail internally.
func FuzzServeDevice(f *testing.F) {
	e := startTest(f, Options{Seed: "none"})
	gk := createGroup(f, e, map[string]any{"enrollmentGroupId": "g"})
	k, _ := keys.DeriveDeviceKey(gk, "dev")
	good := newRawDevice(f, e, "dev", k).token()
	scope := e.idScope
	f.Add("PUT", "/"+scope+"/registrations/dev/register", good, `{"registrationId":"dev","payload":{"a":1}}`)
	f.Add("PUT", "/"+scope+"/registrations/dev/register", good, `{"payload":null}`)
	f.Add("GET", "/"+scope+"/registrations/dev/operations/5.1.x", good, `{}`)
	f.Add("POST", "/"+scope+"/registrations/dev", good, ``)
	f.Add("PUT", "/"+scope+"/registrations/dev/register", "SharedAccessSignature sr=&sig=&se=", `[`)
	f.Add("DELETE", "/x/registrations/%zz/register", "", "")
	f.Fuzz(func(t *testing.T, method, path, auth, body string) {
		r, err := http.NewRequest(method, "https://"+e.dpsHost+"/", strings.NewReader(body))
		if err != nil {
			return
		}
		u, err := url.Parse(path)
		if err != nil || u.Path == "" {
			return
		}
		r.URL.Path = u.Path
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		e.serveDevice(w, r)
		switch w.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusUnauthorized,
			http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%s %q: HTTP %d %s", method, path, w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %q: HTTP %d with Content-Type %q and body %q", method, path, w.Code, ct, w.Body)
		}
	})
}

// TestSecondaryKeys: a key derived from the group's secondary key, and an
// individual enrollment's secondary key, admit the device too.
func TestSecondaryKeys(t *testing.T) {
	e := startTest(t, Options{Seed: "none"})
	s := newSvc(t, e)
	pk, sk := keys.GenerateKey(), keys.GenerateKey()
	sym := map[string]any{"type": "symmetricKey", "symmetricKey": map[string]any{"primaryKey": pk.Base64(), "secondaryKey": sk.Base64()}}
	s.must(http.StatusOK, http.MethodPut, "/enrollmentGroups/g?api-version=2021-10-01", map[string]any{"enrollmentGroupId": "g", "attestation": sym})
	s.must(http.StatusOK, http.MethodPut, "/enrollments/solo?api-version=2021-10-01", map[string]any{"registrationId": "solo", "attestation": sym})

	dk, _ := keys.DeriveDeviceKey(sk, "grouped")
	for rid, key := range map[string]keys.Key{"grouped": dk, "solo": sk} {
		st := newRawDevice(t, e, rid, key).register(`{"registrationId":"` + rid + `"}`)
		if st.Status != dps.StatusAssigned {
			t.Fatalf("%s with its secondary key: %+v", rid, st)
		}
		d, err := e.store.hubDevice(t.Context(), hubIndex(e, st.RegistrationState.AssignedHub), rid)
		if err != nil || d.SecondaryKey != key.Base64() {
			t.Fatalf("%s: the hub identity does not hold the secondary key (%v)", rid, err)
		}
	}
}

func hubIndex(e *Emulator, host string) int {
	for _, h := range e.hubs {
		if h.HostName == host {
			return h.Index
		}
	}
	return 0
}

// TestPollAfterRestartIsFailedNotUnassigned: a registration still
// "assigning" when the emulator stopped is answered, after the restart, as
// a final HTTP 200 "failed" (Node treats "unassigned" as a SyntaxError and
// would poll "assigning" forever).
func TestPollAfterRestartIsFailedNotUnassigned(t *testing.T) {
	dir := t.TempDir()
	e := startTest(t, Options{DataDir: dir, Seed: "none", AssignmentDelay: time.Hour})
	gk := createGroup(t, e, map[string]any{"enrollmentGroupId": "g"})
	k, _ := keys.DeriveDeviceKey(gk, "dev")
	resp, b := newRawDevice(t, e, "dev", k).do(http.MethodPut, "/register?api-version=2019-03-31", `{"registrationId":"dev"}`)
	var st dps.RegistrationOperationStatus
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &st) != nil || st.Status != dps.StatusAssigning || resp.Header.Get("Retry-After") != "3600" {
		t.Fatalf("register: HTTP %d %s Retry-After %q", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	e.Close()

	e2 := startTest(t, Options{DataDir: dir})
	resp, b = newRawDevice(t, e2, "dev", k).do(http.MethodGet, "/operations/"+st.OperationID+"?api-version=2019-03-31", "{}")
	var got dps.RegistrationOperationStatus
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &got) != nil || got.Status != dps.StatusFailed ||
		got.RegistrationState == nil || got.RegistrationState.ErrorCode == 0 || got.RegistrationState.ErrorMessage == "" {
		t.Fatalf("poll after restart: HTTP %d %s, want 200 failed with an error code and message", resp.StatusCode, b)
	}
}
