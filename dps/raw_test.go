package dps

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// GetJSON returns the body as DPS sent it: member order, spacing and fields
// this client does not model all kept; each read sends its method and path.
func TestGetJSONReturnsTheBodyAsSent(t *testing.T) {
	const body = `{"registrationId":"dev 1",  "futureField":{"x":1},"errorCode":400208}`
	var got []string
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}, nil)
	for _, read := range []RawRead{ReadRegistrationState, ReadEnrollmentGroupKeys} {
		raw, err := c.GetJSON(context.Background(), read, "dev 1")
		if err != nil || string(raw) != body {
			t.Fatalf("GetJSON = %q, %v; want the body as sent", raw, err)
		}
	}
	want := []string{"GET /registrations/dev%201?api-version=" + APIVersion, "POST /enrollmentGroups/dev%201/attestationmechanism?api-version=" + APIVersion}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("requests %q, want %q", got, want)
	}
	if p, _ := ReadEnrollment.Path("a/b"); p != "/enrollments/a%2Fb" {
		t.Fatalf("Path escapes the ID: %q", p)
	}
	if _, err := c.GetJSON(context.Background(), ReadEnrollment, ""); err == nil || !strings.Contains(err.Error(), "registration ID is empty") {
		t.Fatalf("an empty ID is refused: %v", err)
	}
}
