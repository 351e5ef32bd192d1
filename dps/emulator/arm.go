package emulator

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dpsconsole/dpsconsole/keys"
)

// arm.go: the part of Azure Resource Manager that describes this emulator:
// its subscription and tenant, and the DPS resource (host names, ID scope,
// linked hubs, listkeys), in the JSON shapes and api-versions of the Azure
// SDK for Go's armsubscriptions and armdeviceprovisioningservices.

// armLocation is the Azure region the emulated resources report.
const armLocation = "local"

// The api-versions ARM takes for each provider; the Go SDK modules send the
// newest (armsubscriptions v1.3.0: 2022-12-01; armdeviceprovisioningservices
// v1.2.0: 2022-02-05).
var (
	subscriptionAPIVersions = []string{"2016-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-01-01", "2022-12-01"}
	dpsAPIVersions          = []string{"2017-11-15", "2018-01-22", "2020-01-01", "2020-03-01", "2020-09-01-preview", "2021-10-15", "2022-02-05", "2022-12-12", "2023-03-01-preview", "2025-02-01-preview"}
)

// ARM RBAC actions the emulated resources need.
const (
	actionDPSRead     = "Microsoft.Devices/provisioningServices/read"
	actionDPSListKeys = "Microsoft.Devices/provisioningServices/listkeys/action"
	actionSubRead     = "Microsoft.Resources/subscriptions/read"
)

// armError is ARM's error body.
type armError struct {
	Error armErrorDetail `json:"error"`
}

type armErrorDetail struct {
	Code    string           `json:"code"`
	Target  string           `json:"target,omitempty"`
	Message string           `json:"message"`
	Details []armErrorDetail `json:"details,omitempty"`
}

func writeARMError(w http.ResponseWriter, status int, code, msg string) {
	writeARMErrorDetail(w, status, armErrorDetail{Code: code, Message: msg})
}

func writeARMErrorDetail(w http.ResponseWriter, status int, d armErrorDetail) {
	w.Header().Set("x-ms-failure-cause", "gateway")
	w.Header().Set("x-ms-request-id", newGUID())
	writeJSON(w, status, armError{d})
}

// AddUnregisteredSubscription adds a subscription (GUID) to the ones the
// identity sees, one that has not registered the Microsoft.Devices resource
// provider: listing its DPS instances answers ARM's 409
// MissingSubscriptionRegistration. It needs Options.Entra.
func (e *Emulator) AddUnregisteredSubscription(id string) {
	a := e.entra
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unregistered = append(a.unregistered, id)
}

// unregisteredSubscription reports whether id is one of AddUnregisteredSubscription's.
func (a *entraAuthority) unregisteredSubscription(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.ContainsFunc(a.unregistered, func(s string) bool { return strings.EqualFold(s, id) })
}

// refuseUnregistered answers as ARM does a call on a resource provider the
// subscription has not registered.
func refuseUnregistered(w http.ResponseWriter) {
	msg := "The subscription is not registered to use namespace 'Microsoft.Devices'. See https://aka.ms/rps-not-found for how to register subscriptions."
	writeARMErrorDetail(w, http.StatusConflict, armErrorDetail{Code: "MissingSubscriptionRegistration", Message: msg,
		Details: []armErrorDetail{{Code: "MissingSubscriptionRegistration", Target: "Microsoft.Devices", Message: msg}}})
}

// serveARM answers /subscriptions/... and /tenants; false when the path is
// the authority's.
func (e *Emulator) serveARM(w http.ResponseWriter, r *http.Request, segs []string) bool {
	if len(segs) == 0 || !(strings.EqualFold(segs[0], "subscriptions") || strings.EqualFold(segs[0], "tenants")) {
		return false
	}
	a := e.entra
	claims, ok := a.authorizeARM(w, r)
	if !ok {
		return true
	}
	p := a.principalByObjectID(claims.Oid)
	if p == nil {
		writeARMError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid: its principal is not in this tenant.")
		return true
	}
	if strings.EqualFold(segs[0], "tenants") {
		if len(segs) != 1 || r.Method != http.MethodGet {
			writeARMError(w, http.StatusNotFound, "NotFound", "no such ARM path: "+r.Method+" "+r.URL.Path)
		} else if a.checkAPIVersion(w, r, subscriptionAPIVersions) {
			a.serveTenants(w)
		}
		return true
	}
	e.serveSubscriptions(w, r, p, segs[1:])
	return true
}

// authorizeARM checks the bearer token for ARM's audience, answering 401s in
// ARM's shape (with the WWW-Authenticate challenge ARM sends).
func (a *entraAuthority) authorizeARM(w http.ResponseWriter, r *http.Request) (tokenClaims, bool) {
	fail := func(code, msg string) (tokenClaims, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+a.base+"/"+a.tenant+`", error="invalid_token", error_description="`+msg+`"`)
		writeARMError(w, http.StatusUnauthorized, code, msg)
		return tokenClaims{}, false
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return fail("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
	}
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return fail("AuthenticationFailedInvalidHeader", "Authentication failed. The 'Authorization' header is provided in an invalid format.")
	}
	now := time.Now()
	c, err := a.verify(strings.TrimSpace(tok), audienceARM, now)
	switch {
	case err == nil:
		return c, true
	case errors.Is(err, errTokenExpired):
		return fail("ExpiredAuthenticationToken", fmt.Sprintf("The access token expiry UTC time '%s' is earlier than current UTC time '%s'.",
			time.Unix(c.Exp, 0).UTC().Format("1/2/2006 3:04:05 PM"), now.UTC().Format("1/2/2006 3:04:05 PM")))
	case errors.Is(err, errTokenAudience):
		return fail("InvalidAuthenticationTokenAudience", fmt.Sprintf("The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s','%s','%s','%s'.",
			c.Aud, audienceARM, strings.TrimSuffix(audienceARM, "/"), "https://management.azure.com/", "https://management.azure.com"))
	default:
		return fail("InvalidAuthenticationToken", "The access token is invalid: "+err.Error())
	}
}

// checkAPIVersion answers 400 in ARM's words when api-version is missing or
// not one the provider takes.
func (a *entraAuthority) checkAPIVersion(w http.ResponseWriter, r *http.Request, supported []string) bool {
	v := r.URL.Query().Get("api-version")
	switch {
	case v == "":
		writeARMError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return false
	case !slices.Contains(supported, v):
		writeARMError(w, http.StatusBadRequest, "InvalidApiVersionParameter",
			fmt.Sprintf("The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(supported, ",")))
		return false
	}
	return true
}

// may reports whether p's ARM role allows action: Reader reads, Contributor
// does everything.
func (p *principal) may(action string) bool {
	if slices.Contains(p.roles, roleContributor) {
		return true
	}
	return slices.Contains(p.roles, roleReader) && strings.HasSuffix(strings.ToLower(action), "/read")
}

func (a *entraAuthority) refuseARM(w http.ResponseWriter, p *principal, action, scope string) {
	writeARMError(w, http.StatusForbidden, "AuthorizationFailed",
		fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
			p.objectID, p.objectID, action, scope))
}

func (a *entraAuthority) serveTenants(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{"value": []map[string]any{{
		"id": "/tenants/" + a.tenant, "tenantId": a.tenant, "tenantCategory": "Home",
		"displayName": "dpsconsole emulator", "defaultDomain": "dpsconsole-emulator.local", "domains": []string{"dpsconsole-emulator.local"},
		"countryCode": "US", "tenantType": "AAD",
	}}})
}

func (a *entraAuthority) subscriptionJSON() map[string]any {
	return a.subscriptionJSONOf(a.subscription, "dpsconsole emulator")
}

// subscriptions are the JSON of every subscription the identity sees.
func (a *entraAuthority) subscriptions() []any {
	all := []any{a.subscriptionJSON()}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range a.unregistered {
		all = append(all, a.subscriptionJSONOf(id, "dpsconsole emulator, no Microsoft.Devices"))
	}
	return all
}

func (a *entraAuthority) subscriptionJSONOf(id, name string) map[string]any {
	return map[string]any{
		"id": "/subscriptions/" + id, "authorizationSource": "RoleBased", "managedByTenants": []any{},
		"subscriptionId": id, "tenantId": a.tenant, "displayName": name, "state": "Enabled",
		"subscriptionPolicies": map[string]any{"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
	}
}

// serveSubscriptions serves /subscriptions[/{sub}[/...]].
func (e *Emulator) serveSubscriptions(w http.ResponseWriter, r *http.Request, p *principal, rest []string) {
	a := e.entra
	notFound := func() {
		writeARMError(w, http.StatusNotFound, "NotFound", "no such ARM path: "+r.Method+" "+r.URL.Path)
	}
	if len(rest) == 0 {
		if r.Method != http.MethodGet {
			notFound()
		} else if a.checkAPIVersion(w, r, subscriptionAPIVersions) {
			subs := a.subscriptions()
			writeJSON(w, http.StatusOK, map[string]any{"value": subs, "count": map[string]any{"type": "Total", "value": len(subs)}})
		}
		return
	}
	if len(rest) > 1 && eqFold(rest, 1, "providers") && eqFold(rest, 2, "Microsoft.Devices") && a.unregisteredSubscription(rest[0]) {
		refuseUnregistered(w)
		return
	}
	if !strings.EqualFold(rest[0], a.subscription) {
		writeARMError(w, http.StatusNotFound, "SubscriptionNotFound", fmt.Sprintf("The subscription '%s' could not be found. This emulator's is %s (AZURE_SUBSCRIPTION_ID).", rest[0], a.subscription))
		return
	}
	rest = rest[1:]
	eq := func(i int, s string) bool { return len(rest) > i && strings.EqualFold(rest[i], s) }
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		if a.checkAPIVersion(w, r, subscriptionAPIVersions) {
			writeJSON(w, http.StatusOK, a.subscriptionJSON())
		}
	case len(rest) == 3 && eq(0, "providers") && eq(1, "Microsoft.Devices") && eq(2, "provisioningServices") && r.Method == http.MethodGet:
		e.listDPSResources(w, r, p)
	case len(rest) >= 5 && eq(0, "resourceGroups") && eq(2, "providers") && eq(3, "Microsoft.Devices") && eq(4, "provisioningServices"):
		if !strings.EqualFold(rest[1], dpsResourceGroup) {
			writeARMError(w, http.StatusNotFound, "ResourceGroupNotFound", fmt.Sprintf("Resource group '%s' could not be found. This emulator's is %s (DPS_RESOURCE_GROUP).", rest[1], dpsResourceGroup))
			return
		}
		e.serveDPSResource(w, r, p, rest[5:])
	default:
		notFound()
	}
}

func (e *Emulator) listDPSResources(w http.ResponseWriter, r *http.Request, p *principal) {
	a := e.entra
	if !a.checkAPIVersion(w, r, dpsAPIVersions) {
		return
	}
	if !p.may(actionDPSRead) {
		a.refuseARM(w, p, actionDPSRead, "/subscriptions/"+a.subscription)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": []any{e.dpsResourceJSON()}})
}

// serveDPSResource serves .../provisioningServices[/{name}[/listkeys |
// /keys/{keyName}/listkeys]].
func (e *Emulator) serveDPSResource(w http.ResponseWriter, r *http.Request, p *principal, rest []string) {
	a := e.entra
	if !a.checkAPIVersion(w, r, dpsAPIVersions) {
		return
	}
	if len(rest) == 0 {
		if r.Method != http.MethodGet {
			writeARMError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not served on "+r.URL.Path)
			return
		}
		e.listDPSResources(w, r, p)
		return
	}
	if !strings.EqualFold(rest[0], dpsResourceName) {
		writeARMError(w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource 'Microsoft.Devices/provisioningServices/%s' under resource group '%s' was not found. This emulator's DPS is %s (DPS_NAME). For more details please go to https://aka.ms/ARMResourceNotFoundFix", rest[0], dpsResourceGroup, dpsResourceName))
		return
	}
	scope := e.dpsResourceID()
	rest = rest[1:]
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		if !p.may(actionDPSRead) {
			a.refuseARM(w, p, actionDPSRead, scope)
			return
		}
		writeJSON(w, http.StatusOK, e.dpsResourceJSON())
	case len(rest) == 1 && strings.EqualFold(rest[0], "listkeys") && r.Method == http.MethodPost:
		if !p.may(actionDPSListKeys) {
			a.refuseARM(w, p, actionDPSListKeys, scope)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": []any{e.servicePolicyJSON()}})
	case len(rest) == 3 && strings.EqualFold(rest[0], "keys") && strings.EqualFold(rest[2], "listkeys") && r.Method == http.MethodPost:
		if !p.may(actionDPSListKeys) {
			a.refuseARM(w, p, actionDPSListKeys, scope)
			return
		}
		if !strings.EqualFold(rest[1], servicePolicy) {
			writeARMError(w, http.StatusNotFound, "KeyNameNotFound", fmt.Sprintf("The shared access policy '%s' was not found; this DPS has %s.", rest[1], servicePolicy))
			return
		}
		writeJSON(w, http.StatusOK, e.servicePolicyJSON())
	default:
		writeARMError(w, http.StatusNotFound, "NotFound", "no such ARM path: "+r.Method+" "+r.URL.Path)
	}
}

// eqFold reports whether segs[i] is s, ignoring case.
func eqFold(segs []string, i int, s string) bool {
	return len(segs) > i && strings.EqualFold(segs[i], s)
}

func (e *Emulator) dpsResourceID() string {
	return "/subscriptions/" + e.entra.subscription + "/resourceGroups/" + dpsResourceGroup + "/providers/Microsoft.Devices/provisioningServices/" + dpsResourceName
}

// servicePolicyJSON is the provisioningserviceowner policy with its key, as
// listkeys answers. The emulator has one key per policy: no secondaryKey.
func (e *Emulator) servicePolicyJSON() map[string]any {
	return map[string]any{
		"keyName":    servicePolicy,
		"primaryKey": e.serviceKey.Base64(),
		"rights":     "ServiceConfig, DeviceConnect, EnrollmentRead, EnrollmentWrite, RegistrationStatusRead, RegistrationStatusWrite",
	}
}

// dpsResourceJSON describes the emulated DPS as ARM does: host names of its
// listeners, ID scope, and the linked hubs with their keys masked.
func (e *Emulator) dpsResourceJSON() map[string]any {
	hubs := []any{}
	for _, h := range e.hubs {
		masked := keys.ConnectionString{HostName: h.HostName, SharedAccessKeyName: h.PolicyName, SharedAccessKey: h.key}.String()
		hubs = append(hubs, map[string]any{
			"name": h.HostName, "connectionString": masked, "location": armLocation,
			"allocationWeight": h.Weight, "applyAllocationPolicy": h.ApplyAllocation,
		})
	}
	return map[string]any{
		"id":             e.dpsResourceID(),
		"name":           dpsResourceName,
		"type":           "Microsoft.Devices/provisioningServices",
		"location":       armLocation,
		"resourcegroup":  dpsResourceGroup,
		"subscriptionid": e.entra.subscription,
		"etag":           "AAAAAAAAAAA=",
		"tags":           map[string]string{},
		"sku":            map[string]any{"name": "S1", "tier": "Standard", "capacity": 1},
		"properties": map[string]any{
			"state":                      "Active",
			"provisioningState":          "Succeeded",
			"publicNetworkAccess":        "Enabled",
			"ipFilterRules":              []any{},
			"privateEndpointConnections": []any{},
			"allocationPolicy":           "Hashed",
			"iotHubs":                    hubs,
			"serviceOperationsHostName":  e.dpsHost,
			"deviceProvisioningHostName": e.dpsHost,
			"idScope":                    e.idScope,
			"enableDataResidency":        false,
		},
	}
}
