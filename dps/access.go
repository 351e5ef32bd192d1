package dps

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// The built-in Azure roles of the DPS data plane.
const (
	RoleDataReader      = "Device Provisioning Service Data Reader"
	RoleDataContributor = "Device Provisioning Service Data Contributor"
)

// AccessError is a 401 or 403 answer to a request signed with a Microsoft
// Entra ID token: the data action that was refused, the built-in role that
// grants it and where that role must be assigned. It wraps the answer, so
// errors.As finds the *azcore.ResponseError too.
type AccessError struct {
	Service    string // who refused: "DPS", "IoT hub"
	DataAction string // e.g. Microsoft.Devices/provisioningServices/enrollmentGroups/write
	Role       string // the built-in role that grants DataAction
	Scope      string // the resource ID to assign the role at; "" when unknown
	Err        *azcore.ResponseError
}

func (e *AccessError) Error() string {
	return fmt.Sprintf("%s refused %s (%d): %s", e.Service, e.DataAction, e.Err.StatusCode, e.Hint())
}

func (e *AccessError) Unwrap() error { return e.Err }

// Hint says what to do: the role, the data action and the scope, and for a
// 401 that the token itself may be the problem.
func (e *AccessError) Hint() string {
	scope := "the " + e.Service + " resource (or its resource group or subscription)"
	if e.Scope != "" {
		scope = e.Scope
	}
	hint := fmt.Sprintf("the signed-in identity needs the role %q, which grants the data action %s, assigned at the scope %s "+
		"(Azure portal: the resource → Access control (IAM) → Add role assignment; or az role assignment create --role %q --assignee <identity> --scope <scope>)",
		e.Role, e.DataAction, scope, e.Role)
	if e.Err.StatusCode == http.StatusUnauthorized {
		hint += "; if it has the role, the token was refused: it may have expired or be for another tenant or audience, so sign in again (az login, or --tenant)"
	}
	return hint
}

// dataActionInMessage finds the data action a refusal names.
var dataActionInMessage = regexp.MustCompile(`Microsoft\.Devices/[A-Za-z]+/[A-Za-z/]+`)

// NewAccessError turns a 401 or 403 answer to req, sent by a client signed
// in with Microsoft Entra ID, into an *AccessError; other errors pass
// through. classify maps the request to its data action and the least role
// that grants it; a data action the answer names wins over it.
func NewAccessError(err error, service, scope string, req *http.Request, classify func(method, path string) (action, role string)) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || (re.StatusCode != http.StatusUnauthorized && re.StatusCode != http.StatusForbidden) {
		return err
	}
	action, role := classify(req.Method, req.URL.Path)
	if re.RawResponse != nil {
		if body, perr := runtime.Payload(re.RawResponse); perr == nil {
			if named := dataActionInMessage.Find(body); named != nil {
				action = strings.TrimRight(string(named), "/")
			}
		}
	}
	return &AccessError{Service: service, DataAction: action, Role: role, Scope: scope, Err: re}
}

// dpsDataAction maps a DPS service API request to its data action and the
// least role that grants it.
func dpsDataAction(method, path string) (action, role string) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	resource := map[string]string{
		"enrollmentGroups": "enrollmentGroups",
		"enrollments":      "enrollments",
		"registrations":    "registrationStates",
	}[seg[0]]
	if resource == "" {
		resource = seg[0]
	}
	last := seg[len(seg)-1]
	verb, role := "read", RoleDataReader
	switch {
	case method == http.MethodDelete:
		verb, role = "delete", RoleDataContributor
	case last == "attestationmechanism":
		return "Microsoft.Devices/provisioningServices/attestationmechanism/details/action", RoleDataContributor
	case method == http.MethodPut, method == http.MethodPost && len(seg) == 1: // PUT, or a bulk operation
		verb, role = "write", RoleDataContributor
	}
	return "Microsoft.Devices/provisioningServices/" + resource + "/" + verb, role
}
