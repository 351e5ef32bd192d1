package dps

import (
	"context"
	"encoding/json"
	"net/http"
)

// RawRead is one of the service's reads whose answer GetJSON returns as DPS
// sent it, fields this client does not model included: the console's
// describe pane shows the service's own JSON.
type RawRead struct {
	method, collection, what, suffix string
}

// The reads GetJSON makes. The Keys reads are the attestationmechanism
// POSTs, the only way to read symmetric keys back (dps-protocol.md §1.5).
var (
	ReadRegistrationState   = RawRead{http.MethodGet, registrationsPath, "registration ID", ""}
	ReadEnrollmentGroup     = RawRead{http.MethodGet, groupsPath, "enrollment group ID", ""}
	ReadEnrollmentGroupKeys = RawRead{http.MethodPost, groupsPath, "enrollment group ID", "attestationmechanism"}
	ReadEnrollment          = RawRead{http.MethodGet, enrollmentsPath, "registration ID", ""}
	ReadEnrollmentKeys      = RawRead{http.MethodPost, enrollmentsPath, "registration ID", "attestationmechanism"}
)

// Method is the read's HTTP method.
func (r RawRead) Method() string { return r.method }

// Path is the escaped path the read sends for id, without the api-version.
func (r RawRead) Path(id string) (string, error) {
	if r.suffix == "" {
		return idPath(r.collection, r.what, id)
	}
	return idPath(r.collection, r.what, id, r.suffix)
}

// GetJSON makes read r of id and returns the body undecoded.
func (c *Client) GetJSON(ctx context.Context, r RawRead, id string) (json.RawMessage, error) {
	path, err := r.Path(id)
	if err != nil {
		return nil, err
	}
	return call[json.RawMessage](ctx, c, "GetJSON", r.method, path, nil, nil)
}
