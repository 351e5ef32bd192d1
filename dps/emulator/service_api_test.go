package emulator

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

const av = "?api-version=2021-10-01"

func symGroup(id string) map[string]any {
	return map[string]any{"enrollmentGroupId": id, "attestation": map[string]any{"type": "symmetricKey"}}
}

func TestGroupLifecycleAndKeyVisibility(t *testing.T) {
	e := startTest(t, Options{})
	s := newSvc(t, e)

	_, b := s.must(200, "PUT", "/enrollmentGroups/grp-1"+av, symGroup("grp-1"))
	created := decode[dps.EnrollmentGroup](t, b)
	for name, k := range map[string]dps.Secret{"primary": created.Attestation.SymmetricKey.PrimaryKey, "secondary": created.Attestation.SymmetricKey.SecondaryKey} {
		raw, err := base64.StdEncoding.DecodeString(k.Reveal())
		if err != nil || len(raw) != 64 {
			t.Errorf("generated %s key: %d bytes, err %v; want 64", name, len(raw), err)
		}
	}
	if created.ETag == "" || created.CreatedDateTimeUTC.IsZero() || created.ProvisioningStatus != dps.ProvisioningEnabled || created.ReprovisionPolicy == nil {
		t.Errorf("PUT answer lacks server fields: %s", b)
	}

	// GET and query hide the keys; attestationmechanism (lower-case g, as
	// Node sends it) returns them.
	_, b = s.must(200, "GET", "/enrollmentGroups/GRP-1"+av, nil)
	if strings.Contains(string(b), created.Attestation.SymmetricKey.PrimaryKey.Reveal()) || strings.Contains(string(b), "primaryKey") {
		t.Errorf("GET shows keys: %s", b)
	}
	// In place of the keys GET gives the bare type, as DPS's custom
	// allocation request shows it.
	if got := decode[map[string]json.RawMessage](t, b)["attestation"]; string(got) != `{"type":"symmetricKey"}` {
		t.Errorf("GET attestation = %s, want {\"type\":\"symmetricKey\"}", got)
	}
	_, b = s.must(200, "POST", "/enrollmentGroups/query"+av, `{"query":"*"}`)
	if strings.Contains(string(b), "primaryKey") {
		t.Errorf("query shows keys: %s", b)
	}
	_, b = s.must(200, "POST", "/enrollmentgroups/grp-1/attestationmechanism"+av, nil)
	att := decode[dps.AttestationMechanism](t, b)
	if att.SymmetricKey == nil || att.SymmetricKey.PrimaryKey != created.Attestation.SymmetricKey.PrimaryKey {
		t.Errorf("attestationmechanism: %s", b)
	}

	// Supplied keys are kept; every write makes a new ETag; created stays.
	mine := keys.GenerateKey().Base64()
	g := symGroup("grp-1")
	g["attestation"] = map[string]any{"type": "symmetrickey", "symmetricKey": map[string]any{"primaryKey": mine, "secondaryKey": mine}}
	_, b = s.must(200, "PUT", "/ENROLLMENTGROUPS/grp-1"+av, g)
	updated := decode[dps.EnrollmentGroup](t, b)
	if updated.Attestation.SymmetricKey.PrimaryKey.Reveal() != mine || updated.ETag == created.ETag || !updated.CreatedDateTimeUTC.Equal(created.CreatedDateTimeUTC) {
		t.Errorf("update: etag %s (was %s), created %v (was %v)", updated.ETag, created.ETag, updated.CreatedDateTimeUTC, created.CreatedDateTimeUTC)
	}

	s.must(204, "DELETE", "/enrollmentGroups/Grp-1"+av, nil)
	resp, b := s.must(404, "GET", "/enrollmentGroups/grp-1"+av, nil)
	det := decode[dps.ErrorDetails](t, b)
	if det.ErrorCode != codeNotFound || det.TrackingID == "" || det.TimestampUTC.IsZero() || !strings.Contains(det.Message, "grp-1") {
		t.Errorf("404 body: %s", b)
	}
	if resp.Header.Get("x-ms-error-code") != "404201" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("404 headers: %v", resp.Header)
	}
	s.must(404, "DELETE", "/enrollmentGroups/grp-1"+av, nil)
	s.must(404, "POST", "/enrollmentGroups/grp-1/attestationMechanism"+av, nil)
}

func TestIfMatchForms(t *testing.T) {
	e := startTest(t, Options{})
	s := newSvc(t, e)
	_, b := s.must(200, "PUT", "/enrollmentGroups/g"+av, symGroup("g"))
	etag := decode[dps.EnrollmentGroup](t, b).ETag // `"guid"`, quotes included
	unquoted := strings.Trim(etag, `"`)

	for _, tc := range []struct {
		name, ifMatch string
		want          int
	}{
		{"star", "*", 200},
		{"quoted star", `"*"`, 200},
		{"stale", `"00000000-0000-0000-0000-000000000000"`, 412},
		{"current quoted", "", 200}, // filled in below from the previous answer
		{"current unquoted", "", 200},
	} {
		im := tc.ifMatch
		switch tc.name {
		case "current quoted":
			im = etag
		case "current unquoted":
			im = unquoted
		}
		resp, b := s.req("PUT", "/enrollmentGroups/g"+av, symGroup("g"), "If-Match", im)
		if resp.StatusCode != tc.want {
			t.Fatalf("%s (If-Match %s): status %d, want %d: %s", tc.name, im, resp.StatusCode, tc.want, b)
		}
		if resp.StatusCode == 200 {
			etag = decode[dps.EnrollmentGroup](t, b).ETag
			unquoted = strings.Trim(etag, `"`)
		} else if det := decode[dps.ErrorDetails](t, b); det.ErrorCode != codePrecondition || det.TrackingID == "" || det.Message == "" ||
			det.TimestampUTC.IsZero() || resp.Header.Get("x-ms-error-code") != "412002" {
			t.Errorf("412: x-ms-error-code %q, body %s", resp.Header.Get("x-ms-error-code"), b)
		}
	}
	s.must(412, "DELETE", "/enrollmentGroups/g"+av, nil, "If-Match", `"stale"`)
	s.must(412, "PUT", "/enrollmentGroups/new-one"+av, symGroup("new-one"), "If-Match", `"some-etag"`)
	s.must(204, "DELETE", "/enrollmentGroups/g"+av, nil, "If-Match", etag)
}

func TestPagingAcrossGroups(t *testing.T) {
	e := startTest(t, Options{})
	s := newSvc(t, e)
	want := map[string]bool{}
	for i := range 7 {
		id := fmt.Sprintf("page-%d", i)
		want[id] = true
		s.must(200, "PUT", "/enrollmentGroups/"+id+av, symGroup(id))
	}
	seen := map[string]int{}
	token, pages := "", 0
	for {
		resp, b := s.must(200, "POST", "/enrollmentGroups/query"+av, `{"query":"*"}`, "x-ms-max-item-count", "2", "x-ms-continuation", token)
		pages++
		if got := resp.Header.Get("x-ms-max-item-count"); got != "2" || resp.Header.Get("x-ms-item-type") != "enrollmentGroup" {
			t.Fatalf("page headers: x-ms-max-item-count %q, x-ms-item-type %q", got, resp.Header.Get("x-ms-item-type"))
		}
		items := decode[[]dps.EnrollmentGroup](t, b)
		if len(items) > 2 {
			t.Fatalf("page of %d items with page size 2", len(items))
		}
		for _, g := range items {
			seen[g.EnrollmentGroupID]++
		}
		if _, has := resp.Header["X-Ms-Continuation"]; !has {
			break
		}
		token = resp.Header.Get("x-ms-continuation")
		if token == "" || pages > 10 {
			t.Fatalf("continuation %q after %d pages", token, pages)
		}
	}
	if pages != 4 || len(seen) != len(want) {
		t.Fatalf("%d pages, saw %v", pages, seen)
	}
	for id, n := range seen {
		if n != 1 || !want[id] {
			t.Errorf("%s seen %d times", id, n)
		}
	}
	// No page size means the default; a larger one than the cap is cut to it.
	for ask, want := range map[string]string{"": "100", "5000": "1000"} {
		resp, b := s.must(200, "POST", "/enrollmentGroups/query"+av, `{"query":"*"}`, "x-ms-max-item-count", ask)
		if got, n := resp.Header.Get("x-ms-max-item-count"), len(decode[[]dps.EnrollmentGroup](t, b)); got != want || n != 7 {
			t.Errorf("x-ms-max-item-count %q: echoed %q, %d items; want %q, 7", ask, got, n, want)
		}
		if _, has := resp.Header["X-Ms-Continuation"]; has {
			t.Errorf("x-ms-max-item-count %q: a single page carries x-ms-continuation", ask)
		}
	}
	s.must(400, "POST", "/enrollmentGroups/query"+av, `{"query":"*"}`, "x-ms-continuation", "not-a-token")
	s.must(400, "POST", "/enrollmentGroups/query"+av, `{"query":"*"}`, "x-ms-max-item-count", "two")
	// An empty result is an empty array, not null.
	_, b := s.must(200, "POST", "/enrollments/query"+av, `{"query":"*"}`)
	if strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("empty query: %s", b)
	}
}

func TestRegistrationRecords(t *testing.T) {
	e := startTest(t, Options{Seed: "demo"})
	s := newSvc(t, e)
	list := func(group string, body any) []dps.DeviceRegistrationState {
		var all []dps.DeviceRegistrationState
		token := ""
		for {
			resp, b := s.must(200, "POST", "/registrations/"+group+"/query"+av, body, "x-ms-max-item-count", "10", "x-ms-continuation", token)
			all = append(all, decode[[]dps.DeviceRegistrationState](t, b)...)
			if token = resp.Header.Get("x-ms-continuation"); token == "" {
				if _, has := resp.Header["X-Ms-Continuation"]; has {
					t.Fatalf("the last page carries an empty x-ms-continuation (Node would loop)")
				}
				return all
			}
		}
	}
	// The registration query with a body (Node) and without (CLI).
	withBody := list(DemoHashedGroup, `{"query":"*"}`)
	without := list(strings.ToUpper(DemoHashedGroup), nil)
	if len(withBody) != demoFleetSize || len(without) != demoFleetSize {
		t.Fatalf("listed %d and %d records, want %d", len(withBody), len(without), demoFleetSize)
	}
	// Deleting the group keeps its records.
	s.must(204, "DELETE", "/enrollmentGroups/"+DemoHashedGroup+av, nil)
	if n := len(list(DemoHashedGroup, nil)); n != demoFleetSize {
		t.Fatalf("after deleting the group: %d records, want %d", n, demoFleetSize)
	}
	if n := len(list(DemoDeletedGroup, nil)); n != demoRetiredSize {
		t.Fatalf("orphans of the deleted demo group: %d, want %d", n, demoRetiredSize)
	}

	rec := withBody[0]
	_, b := s.must(200, "GET", "/registrations/"+strings.ToUpper(rec.RegistrationID)+av, nil)
	got := decode[dps.DeviceRegistrationState](t, b)
	if got.RegistrationID != rec.RegistrationID || got.AssignedHub == "" || got.Status != dps.StatusAssigned {
		t.Errorf("GET registration: %s", b)
	}
	s.must(412, "DELETE", "/registrations/"+rec.RegistrationID+av, nil, "If-Match", `"stale"`)
	s.must(204, "DELETE", "/registrations/"+rec.RegistrationID+av, nil, "If-Match", got.ETag)
	_, b = s.must(404, "GET", "/registrations/"+rec.RegistrationID+av, nil)
	if decode[dps.ErrorDetails](t, b).ErrorCode != codeRegistrationAbsent {
		t.Errorf("404 code: %s", b)
	}
	s.must(400, "POST", "/registrations/x/query"+av, "{not json")
}

func TestIndividualEnrollments(t *testing.T) {
	e := startTest(t, Options{})
	s := newSvc(t, e)
	en := map[string]any{"registrationId": "dev-1", "deviceId": "device-one", "attestation": map[string]any{"type": "symmetricKey"}}
	_, b := s.must(200, "PUT", "/enrollments/dev-1"+av, en)
	put := decode[dps.IndividualEnrollment](t, b)
	if put.Attestation.SymmetricKey == nil || put.Attestation.SymmetricKey.PrimaryKey == "" {
		t.Fatalf("PUT answer has no keys: %s", b)
	}
	for _, k := range []dps.Secret{put.Attestation.SymmetricKey.PrimaryKey, put.Attestation.SymmetricKey.SecondaryKey} {
		if raw, err := base64.StdEncoding.DecodeString(k.Reveal()); err != nil || len(raw) != 64 {
			t.Errorf("generated key: %d bytes (%v), want 64", len(raw), err)
		}
	}
	_, b = s.must(200, "GET", "/Enrollments/DEV-1"+av, nil)
	if strings.Contains(string(b), "primaryKey") || strings.Contains(string(b), "registrationState") {
		t.Errorf("GET: %s", b)
	}
	_, b = s.must(200, "POST", "/enrollments/dev-1/attestationmechanism"+av, nil)
	if decode[dps.AttestationMechanism](t, b).SymmetricKey.PrimaryKey != put.Attestation.SymmetricKey.PrimaryKey {
		t.Errorf("attestationmechanism: %s", b)
	}
	// Once the device registered, GET carries the read-only registrationState.
	if _, err := e.store.putRegistration(context.Background(), registration{
		DeviceRegistrationState: dps.DeviceRegistrationState{RegistrationID: "dev-1", DeviceID: "device-one", Status: dps.StatusAssigned, AssignedHub: e.hubs[0].HostName},
		EnrollmentID:            "dev-1",
	}); err != nil {
		t.Fatal(err)
	}
	_, b = s.must(200, "GET", "/enrollments/dev-1"+av, nil)
	if got := decode[dps.IndividualEnrollment](t, b); got.RegistrationState == nil || got.RegistrationState.AssignedHub != e.hubs[0].HostName {
		t.Errorf("GET after registration: %s", b)
	}
	s.must(412, "DELETE", "/enrollments/dev-1"+av, nil, "If-Match", `"nope"`)
	s.must(204, "DELETE", "/enrollments/dev-1"+av, nil, "If-Match", `"*"`)
	s.must(404, "GET", "/enrollments/dev-1"+av, nil)
}

func TestBulk(t *testing.T) {
	e := startTest(t, Options{})
	s := newSvc(t, e)
	items := func(ids ...string) []map[string]any {
		var out []map[string]any
		for _, id := range ids {
			out = append(out, map[string]any{"registrationId": id, "attestation": map[string]any{"type": "symmetricKey"}})
		}
		return out
	}
	// Node posts to /enrollments/ with a trailing slash.
	_, b := s.must(200, "POST", "/enrollments/"+av, map[string]any{"mode": "create", "enrollments": items("b-1", "b-2", "b-3")})
	if res := decode[dps.BulkEnrollmentOperationResult](t, b); !res.IsSuccessful || len(res.Errors) != 0 {
		t.Fatalf("bulk create: %s", b)
	}
	// Per-item errors: an existing one, a bad key, a bad ID; the good one is kept.
	bad := items("b-1", "b-4", "b-5", "bad id")
	bad[2]["attestation"] = map[string]any{"type": "symmetricKey", "symmetricKey": map[string]any{"primaryKey": "short"}}
	_, b = s.must(200, "POST", "/enrollments"+av, map[string]any{"mode": "CREATE", "enrollments": bad})
	res := decode[dps.BulkEnrollmentOperationResult](t, b)
	codes := map[string]int32{}
	for _, er := range res.Errors {
		codes[er.RegistrationID] = er.ErrorCode
		if er.ErrorStatus == "" {
			t.Errorf("error without a message: %+v", er)
		}
	}
	if res.IsSuccessful || codes["b-1"] != codeConflict || codes["b-5"] != codeBadRequest || codes["bad id"] != codeBadRequest || len(codes) != 3 {
		t.Fatalf("bulk errors: %s", b)
	}
	s.must(200, "GET", "/enrollments/b-4"+av, nil)

	// updateIfMatchEtag as Node spells it; a stale etag fails that item only.
	_, b = s.must(200, "GET", "/enrollments/b-2"+av, nil)
	cur := decode[dps.IndividualEnrollment](t, b)
	upd := items("b-2", "b-3")
	upd[0]["etag"], upd[1]["etag"] = cur.ETag, `"stale"`
	_, b = s.must(200, "POST", "/enrollments"+av, map[string]any{"mode": "updateIfMatchEtag", "enrollments": upd})
	if res := decode[dps.BulkEnrollmentOperationResult](t, b); len(res.Errors) != 1 || res.Errors[0].RegistrationID != "b-3" || res.Errors[0].ErrorCode != codePrecondition {
		t.Fatalf("updateIfMatchEtag: %s", b)
	}

	_, b = s.must(200, "POST", "/enrollments"+av, map[string]any{"mode": "delete", "enrollments": items("b-1", "b-2", "b-3", "b-4", "missing")})
	if res := decode[dps.BulkEnrollmentOperationResult](t, b); len(res.Errors) != 1 || res.Errors[0].ErrorCode != codeNotFound {
		t.Fatalf("bulk delete: %s", b)
	}
	s.must(404, "GET", "/enrollments/b-1"+av, nil)

	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("x-%d", i)
	}
	s.must(400, "POST", "/enrollments"+av, map[string]any{"mode": "create", "enrollments": items(eleven...)})
	s.must(400, "POST", "/enrollments"+av, map[string]any{"mode": "upsert", "enrollments": items("x")})
	s.must(400, "POST", "/enrollments"+av, map[string]any{"mode": "create", "enrollments": []any{}})

	// Groups: the same shape with enrollmentGroups.
	_, b = s.must(200, "POST", "/enrollmentGroups"+av, map[string]any{"mode": "create", "enrollmentGroups": []any{symGroup("bg-1"), symGroup("bg-2")}})
	if res := decode[dps.BulkEnrollmentGroupOperationResult](t, b); !res.IsSuccessful {
		t.Fatalf("bulk group create: %s", b)
	}
	_, b = s.must(200, "POST", "/enrollmentGroups"+av, map[string]any{"mode": "delete", "enrollmentGroups": []any{symGroup("bg-1"), symGroup("nope")}})
	if res := decode[dps.BulkEnrollmentGroupOperationResult](t, b); len(res.Errors) != 1 || res.Errors[0].EnrollmentGroupID != "nope" {
		t.Fatalf("bulk group delete: %s", b)
	}
}

func TestValidationErrors(t *testing.T) {
	e := startTest(t, Options{})
	s := newSvc(t, e)
	hub := e.hubs[0].HostName
	for _, tc := range []struct {
		name string
		body any
		want string
	}{
		{"bad json", "{", "not valid JSON"},
		{"empty body", "", "empty"},
		{"id mismatch", symGroup("other"), "does not match"},
		{"no type", map[string]any{"attestation": map[string]any{}}, "attestation.type is required"},
		{"tpm group", map[string]any{"attestation": map[string]any{"type": "tpm", "tpm": map[string]any{}}}, "TPM"},
		{"short key", map[string]any{"attestation": map[string]any{"type": "symmetricKey", "symmetricKey": map[string]any{"primaryKey": "AAAA"}}}, "primaryKey"},
		{"bad status", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "provisioningStatus": "on"}, "provisioningStatus"},
		{"bad policy", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "allocationPolicy": "random"}, "allocationPolicy"},
		{"unknown hub", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "iotHubs": []string{"nope.azure-devices.net"}}, "not linked"},
		{"static two hubs", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "allocationPolicy": "static", "iotHubs": []string{hub, e.hubs[1].HostName}}, "exactly one"},
		{"custom no webhook", map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "allocationPolicy": "custom"}, "webhookUrl"},
		{"wrong type", map[string]any{"attestation": "symmetricKey"}, "attestation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, b := s.must(400, "PUT", "/enrollmentGroups/grp"+av, tc.body)
			det := decode[dps.ErrorDetails](t, b)
			if det.ErrorCode != codeBadRequest || !strings.Contains(det.Message, tc.want) {
				t.Errorf("message %q does not mention %q", det.Message, tc.want)
			}
		})
	}
	// Accepted variations: lower-case policy names, hub names in any case.
	_, b := s.must(200, "PUT", "/enrollmentGroups/ok"+av, map[string]any{"attestation": map[string]any{"type": "symmetricKey"}, "allocationPolicy": "GEOLATENCY", "iotHubs": []string{strings.ToUpper(hub)}})
	if g := decode[dps.EnrollmentGroup](t, b); g.AllocationPolicy != dps.AllocationGeoLatency || g.IoTHubs[0] != hub {
		t.Errorf("normalised group: %s", b)
	}
	s.must(400, "GET", "/enrollmentGroups/ok", nil) // no api-version
	s.must(405, "PATCH", "/enrollmentGroups/ok"+av, nil)
	s.must(404, "GET", "/nothing-here"+av, nil)
}

func TestServiceAuth(t *testing.T) {
	e := startTest(t, Options{})
	s := newSvc(t, e)
	path := "/enrollmentGroups/query" + av
	port := e.dpsHost[strings.LastIndex(e.dpsHost, ":"):]
	for _, tc := range []struct {
		name, auth, want string
	}{
		{"missing", "", "no Authorization header"},
		{"not sas", "Bearer abc", "SharedAccessSignature"},
		{"wrong key", keys.SignSAS(s.host, keys.GenerateKey(), servicePolicy, time.Now().Add(time.Hour)), "does not match"},
		{"expired", keys.SignSAS(s.host, s.key, servicePolicy, time.Now().Add(-time.Minute)), "expired"},
		{"wrong policy", keys.SignSAS(s.host, s.key, "enrollmentread", time.Now().Add(time.Hour)), "policy"},
		{"other host", keys.SignSAS("other.azure-devices-provisioning.net", s.key, servicePolicy, time.Now().Add(time.Hour)), "another resource"},
	} {
		for pass := range 2 { // the second time too: nothing refused is remembered as verified
			t.Run(fmt.Sprintf("%s/%d", tc.name, pass), func(t *testing.T) {
				hdr := []string{"Authorization", tc.auth}
				if tc.auth == "" {
					hdr = []string{"Authorization", ""}
				}
				resp, b := s.req("POST", path, `{"query":"*"}`, hdr...)
				det := decode[dps.ErrorDetails](t, b)
				if resp.StatusCode != 401 || det.ErrorCode != codeUnauthorized || !strings.Contains(det.Message, tc.want) ||
					det.TrackingID == "" || det.TimestampUTC.IsZero() || resp.Header.Get("x-ms-error-code") != "401002" {
					t.Errorf("status %d, body %s; want 401 mentioning %q", resp.StatusCode, b, tc.want)
				}
				if strings.Contains(string(b), s.key.Base64()) || (tc.auth != "" && strings.Contains(string(b), tc.auth)) {
					t.Errorf("the error repeats a secret: %s", b)
				}
			})
		}
	}
	// The host in sr is compared case-insensitively, and the name the client
	// used (localhost) is as good as the one in the connection string.
	s2 := *s
	s2.host = "localhost" + port
	viaLocalhost := keys.SignSAS("LOCALHOST"+port, s.key, servicePolicy, time.Now().Add(time.Hour))
	resp, b := s2.req("POST", path, `{"query":"*"}`, "Authorization", viaLocalhost)
	if resp.StatusCode != 200 {
		t.Errorf("upper-case sr via localhost: %d %s", resp.StatusCode, b)
	}
	// Accepted for the Host it names, that token is still refused for another.
	if resp, b := s.req("POST", path, `{"query":"*"}`, "Authorization", viaLocalhost); resp.StatusCode != 401 {
		t.Errorf("a token for localhost, accepted there, sent to %s: %d %s; want 401", s.host, resp.StatusCode, b)
	}

	// The HMAC is over sr exactly as sent: Node sends host:port unencoded,
	// Python/Go %3A, C %3a; all of them verify.
	for name, sr := range map[string]string{
		"node, unencoded": s.host,
		"python, %3A":     url.QueryEscape(s.host),
		"c, %3a":          strings.ReplaceAll(url.QueryEscape(s.host), "%3A", "%3a"),
		"upper-case, %3A": strings.ToUpper(url.QueryEscape(s.host)),
	} {
		se := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
		m := hmac.New(sha256.New, s.key.Bytes())
		m.Write([]byte(sr + "\n" + se))
		tok := "SharedAccessSignature sr=" + sr + "&sig=" + url.QueryEscape(base64.StdEncoding.EncodeToString(m.Sum(nil))) + "&skn=" + servicePolicy + "&se=" + se
		if resp, b := s.req("POST", path, `{"query":"*"}`, "Authorization", tok); resp.StatusCode != 200 {
			t.Errorf("%s sr %q: %d %s", name, sr, resp.StatusCode, b)
		}
	}
}
