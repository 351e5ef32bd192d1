package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// entra_auth.go: bearer tokens on the DPS and hub service APIs, and the
// data-plane roles they carry (Azure's built-in role definitions).

// codeForbidden answers a principal without the data action. DPS's own
// number for it is unknown (its documented codes have no 403).
const codeForbidden int32 = 403000

// roleDataActions are the data actions each built-in role grants, as Azure
// defines them ("*" spans any part of the action).
var roleDataActions = map[string][]string{
	roleDPSDataContributor: {"Microsoft.Devices/provisioningServices/*"},
	roleDPSDataReader:      {"Microsoft.Devices/provisioningServices/*/read"},
	roleHubDataContributor: {"Microsoft.Devices/IotHubs/*"},
	roleHubDataReader:      {"Microsoft.Devices/IotHubs/*/read"},
	roleHubRegistry:        {"Microsoft.Devices/IotHubs/devices/*"},
	roleHubTwin:            {"Microsoft.Devices/IotHubs/twins/*"},
}

// rolesAllow reports whether any of roles grants action.
func rolesAllow(roles []string, action string) bool {
	for _, r := range roles {
		for _, pattern := range roleDataActions[r] {
			prefix, suffix, _ := strings.Cut(strings.ToLower(pattern), "*")
			a := strings.ToLower(action)
			if len(a) >= len(prefix)+len(suffix) && strings.HasPrefix(a, prefix) && strings.HasSuffix(a, suffix) {
				return true
			}
		}
	}
	return false
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// dpsDataAction is the data action a DPS service API request needs.
func dpsDataAction(r *http.Request) string {
	segs, _ := pathSegments(r.URL)
	kind := "registrationStates"
	switch strings.ToLower(segs[0]) {
	case "enrollmentgroups":
		kind = "enrollmentGroups"
	case "enrollments":
		kind = "enrollments"
	}
	const p = "Microsoft.Devices/provisioningServices/"
	last := strings.ToLower(segs[len(segs)-1])
	switch {
	case len(segs) == 3 && last == "attestationmechanism":
		return p + "attestationmechanism/details/action"
	case r.Method == http.MethodGet || (r.Method == http.MethodPost && last == "query"):
		return p + kind + "/read"
	case r.Method == http.MethodDelete:
		return p + kind + "/delete"
	}
	return p + kind + "/write" // PUT, and the bulk POST
}

// authorizeServiceEntra decides a DPS service API request signed with a
// bearer token, or a SAS one when local auth is disabled; handled is false
// for a SAS request the SAS check should decide.
func (e *Emulator) authorizeServiceEntra(w http.ResponseWriter, r *http.Request) (ok, handled bool) {
	tok, isBearer := bearerToken(r)
	if !isBearer {
		if e.opts.DisableLocalAuth {
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "Unauthorized: local authentication (shared access signatures) is disabled on this provisioning service; sign in with Microsoft Entra ID and send a bearer token")
			return false, true
		}
		return false, false
	}
	if e.entra == nil {
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "Unauthorized: this emulator was started without --entra, so it takes no bearer tokens; sign with a SharedAccessSignature of the DPS connection string")
		return false, true
	}
	c, err := e.entra.verify(tok, audienceDPS, time.Now())
	if err != nil {
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "Unauthorized: "+err.Error())
		return false, true
	}
	action := dpsDataAction(r)
	if !rolesAllow(c.Roles, action) {
		writeError(w, http.StatusForbidden, codeForbidden, fmt.Sprintf(
			"Forbidden: principal '%s' (application '%s') is not authorized to perform data action '%s' on this provisioning service due to no assigned permissions",
			c.Oid, c.AppID, action))
		return false, true
	}
	return true, true
}

// hubDataAction is the data action a hub service API request needs.
func hubDataAction(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	const p = "Microsoft.Devices/IotHubs/"
	switch {
	case strings.EqualFold(parts[0], "twins") && len(parts) == 3 && strings.EqualFold(parts[2], "methods"):
		return p + "directMethods/invoke/action"
	case strings.EqualFold(parts[0], "twins") && r.Method == http.MethodGet:
		return p + "twins/read"
	case strings.EqualFold(parts[0], "twins"):
		return p + "twins/write"
	case len(parts) == 2 && strings.EqualFold(parts[1], "query"):
		return p + "twins/read" // the query answers twins
	case r.Method == http.MethodGet:
		return p + "devices/read"
	case r.Method == http.MethodDelete:
		return p + "devices/delete"
	}
	return p + "devices/write"
}

// hubServiceEntra is authorizeServiceEntra for a hub's service API, answering
// in IoT Hub's error shape. IoT Hub refuses a principal without the role with
// 401 IotHubUnauthorized ("... is not authorized for GET on /twins/x due to no
// assigned permissions"), not 403.
func (e *Emulator) hubServiceEntra(h *hub, w http.ResponseWriter, r *http.Request) (ok, handled bool) {
	tok, isBearer := bearerToken(r)
	if !isBearer {
		if e.opts.DisableLocalAuth {
			writeHubError(w, http.StatusUnauthorized, "IotHubUnauthorizedAccess", "Unauthorized: local authentication (shared access signatures) is disabled on this IoT hub; sign in with Microsoft Entra ID and send a bearer token")
			return false, true
		}
		return false, false
	}
	if e.entra == nil {
		writeHubError(w, http.StatusUnauthorized, "IotHubUnauthorizedAccess", "Unauthorized: this emulator was started without --entra, so it takes no bearer tokens")
		return false, true
	}
	c, err := e.entra.verify(tok, audienceHub, time.Now())
	if err != nil {
		writeHubError(w, http.StatusUnauthorized, "IotHubUnauthorizedAccess", "Unauthorized: "+err.Error())
		return false, true
	}
	if action := hubDataAction(r); !rolesAllow(c.Roles, action) {
		writeHubError(w, http.StatusUnauthorized, "IotHubUnauthorized", fmt.Sprintf(
			"Principal %s is not authorized for %s on %s due to no assigned permissions (data action %s)", c.Oid, r.Method, r.URL.Path, action))
		return false, true
	}
	return true, true
}
