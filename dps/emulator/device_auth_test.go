package emulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// TestDeviceTokenKeyNames: the Python SDK signs its device token with no skn
// (azure-iot-sdk-python common/auth/sastoken.py _simple_token_format; the
// provisioning client passes no key_name) and real DPS accepts it, so the
// emulator does on register, poll and status lookup; skn=registration
// (Node, C, Go) still works; any other skn is refused.
func TestDeviceTokenKeyNames(t *testing.T) {
	e := startTest(t, Options{Seed: "none"})
	gk := createGroup(t, e, map[string]any{"enrollmentGroupId": "g"})
	for i, skn := range []string{"", "registration", "Registration"} {
		rid := "dev-" + string(rune('a'+i))
		k, _ := keys.DeriveDeviceKey(gk, rid)
		d := newRawDevice(t, e, rid, k)
		d.sr, d.skn = srPython, skn
		if st := d.register(`{"registrationId":"` + rid + `","payload":null}`); st.Status != dps.StatusAssigned {
			t.Fatalf("skn %q: final status %+v", skn, st)
		}
		// A poll answered from the store rather than from memory.
		e.dev.recentMu.Lock()
		clear(e.dev.recent)
		e.dev.recentMu.Unlock()
		if resp, b := d.do(http.MethodPost, "?api-version=2019-03-31", `{"registrationId":"`+rid+`"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("skn %q: status lookup HTTP %d %s", skn, resp.StatusCode, b)
		}
	}
	k, _ := keys.DeriveDeviceKey(gk, "dev-x")
	for _, skn := range []string{servicePolicy, hubPolicy, "registrations", "enrollmentread"} {
		d := newRawDevice(t, e, "dev-x", k)
		d.skn = skn
		resp, b := d.do(http.MethodPut, "/register?api-version=2021-10-01", `{"registrationId":"dev-x"}`)
		ed := decode[dps.ErrorDetails](t, b)
		if resp.StatusCode != http.StatusUnauthorized || ed.ErrorCode != codeUnauthorized || !strings.Contains(ed.Message, "skn=registration or no skn") {
			t.Errorf("skn %q: HTTP %d %s, want 401 saying skn must be registration or absent", skn, resp.StatusCode, b)
		}
	}
}

// TestDevice401sRevealNoEnrollment: a caller without the right key cannot
// tell whether an enrollment exists for a registration ID: the 401 has the
// same status, error code and message for an individual enrollment (enabled
// or disabled), for a group, and for an ID nobody enrolled.
func TestDevice401sRevealNoEnrollment(t *testing.T) {
	e := startTest(t, Options{Seed: "none"})
	s := newSvc(t, e)
	createGroup(t, e, map[string]any{"enrollmentGroupId": "g"})
	for id, status := range map[string]string{"solo": "enabled", "off": "disabled"} {
		s.must(http.StatusOK, http.MethodPut, "/enrollments/"+id+av, map[string]any{"registrationId": id, "provisioningStatus": status,
			"attestation": map[string]any{"type": "symmetricKey"}})
	}
	type answer struct {
		status  int
		code    int32
		header  string
		message string
	}
	var first answer
	for i, rid := range []string{"nobody", "solo", "off", "grouped"} {
		for _, path := range []string{"/register?api-version=2021-10-01", "?api-version=2019-03-31", "/operations/5.0.x?api-version=2019-03-31"} {
			d := newRawDevice(t, e, rid, keys.GenerateKey())
			method := map[bool]string{true: http.MethodPut, false: http.MethodPost}[strings.HasPrefix(path, "/register")]
			if strings.HasPrefix(path, "/operations") {
				method = http.MethodGet
			}
			resp, b := d.do(method, path, `{"registrationId":"`+rid+`"}`)
			var ed dps.ErrorDetails
			if err := json.Unmarshal(b, &ed); err != nil {
				t.Fatalf("%s %s: %s", rid, path, b)
			}
			got := answer{resp.StatusCode, ed.ErrorCode, resp.Header.Get("x-ms-error-code"), strings.ReplaceAll(ed.Message, rid, "{id}")}
			if i == 0 && first.status == 0 {
				first = got
			}
			if got != first || got.status != http.StatusUnauthorized {
				t.Errorf("%s %s %s: %+v\nwant the same answer as for an ID nobody enrolled: %+v", method, rid, path, got, first)
			}
		}
	}
}
