package emulator

// entra_http.go: the authority's HTTP endpoints (OpenID configuration, JWKS,
// the OAuth2 v2.0 token and device-code endpoints) in Entra ID's shapes, as
// MSAL Go requests and reads them.

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// serveEntra serves the listener: ARM first (its paths start with /subscriptions
// or /tenants), then the authority.
func (e *Emulator) serveEntra(w http.ResponseWriter, r *http.Request) {
	if !capBody(w, r, e.opts.limits.maxBody, func(msg string) { writeOAuthError(w, http.StatusRequestEntityTooLarge, "invalid_request", 90000, msg) }) {
		return
	}
	e.logRequest(r, "entra")
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if e.serveARM(w, r, segs) {
		return
	}
	a := e.entra
	if len(segs) < 2 {
		writeOAuthError(w, http.StatusNotFound, "invalid_request", 90002, "no such endpoint: "+r.URL.Path+"; the authority serves /{tenant}/v2.0/.well-known/openid-configuration")
		return
	}
	tenant, rest := segs[0], strings.ToLower(strings.Join(segs[1:], "/"))
	if !a.knowsTenant(tenant) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. This emulator's tenant is %s (AZURE_TENANT_ID in emulator.env).", tenant, a.tenant))
		return
	}
	switch {
	case rest == "v2.0/.well-known/openid-configuration" && r.Method == http.MethodGet:
		a.serveOpenIDConfiguration(w, tenant)
	case rest == "discovery/v2.0/keys" && r.Method == http.MethodGet:
		a.serveJWKS(w)
	case rest == "oauth2/v2.0/token" && r.Method == http.MethodPost:
		a.serveToken(w, r)
	case rest == "oauth2/v2.0/devicecode" && r.Method == http.MethodPost:
		a.serveDeviceCode(w, r, tenant)
	default:
		writeOAuthError(w, http.StatusNotFound, "invalid_request", 90002, "no such endpoint: "+r.Method+" "+r.URL.Path)
	}
}

// knowsTenant: the tenant's ID, or the multi-tenant aliases azidentity's
// device-code credential uses by default.
func (a *entraAuthority) knowsTenant(t string) bool {
	return strings.EqualFold(t, a.tenant) || strings.EqualFold(t, "organizations") || strings.EqualFold(t, "common")
}

func (a *entraAuthority) serveOpenIDConfiguration(w http.ResponseWriter, tenant string) {
	t := a.base + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                a.issuer(),
		"authorization_endpoint":                t + "/oauth2/v2.0/authorize",
		"token_endpoint":                        t + "/oauth2/v2.0/token",
		"device_authorization_endpoint":         t + "/oauth2/v2.0/devicecode",
		"jwks_uri":                              t + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "tid", "preferred_username", "ver"},
		"tenant_region_scope":                   nil,
		"cloud_instance_name":                   "dpsconsole-emulator",
	})
}

func (a *entraAuthority) serveJWKS(w http.ResponseWriter) {
	pub := &a.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": a.kid,
		"n":      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"issuer": a.issuer(),
	}}})
}

// oauthError is the body Entra ID answers token-endpoint errors with.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri,omitempty"`
}

// writeOAuthError answers in Entra ID's shape: "AADSTS<code>: <msg>" plus
// the trace lines. msg must never hold a secret or token.
func writeOAuthError(w http.ResponseWriter, status int, code string, aadsts int, msg string) {
	now := time.Now().UTC()
	trace, corr := newGUID(), newGUID()
	writeJSON(w, status, oauthError{
		Error:            code,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, msg, trace, corr, now.Format("2006-01-02 15:04:05Z")),
		ErrorCodes:       []int{aadsts},
		Timestamp:        now.Format("2006-01-02 15:04:05Z"),
		TraceID:          trace,
		CorrelationID:    corr,
		ErrorURI:         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

// tokenResponse is the token endpoint's success body.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope,omitempty"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	ClientInfo   string `json:"client_info,omitempty"`
}

func (a *entraAuthority) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.")
		return
	}
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "client_credentials":
		a.clientCredentials(w, r)
	case "device_code", "urn:ietf:params:oauth:grant-type:device_code": // MSAL sends the short name
		a.deviceCodeToken(w, r)
	case "refresh_token":
		a.refreshToken(w, r)
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", 70003,
			fmt.Sprintf("The app requested an unsupported grant type '%s'. This emulator takes client_credentials, device_code and refresh_token.", grant))
	}
}

// clientCredentials: client_id + client_secret (form or Basic), one scope
// "<resource>/.default".
func (a *entraAuthority) clientCredentials(w http.ResponseWriter, r *http.Request) {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		id, secret = bid, bsecret
	}
	if id == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	}
	p := a.principalByClientID(id)
	if p == nil {
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. The emulator's applications are AZURE_CLIENT_ID and DPS_READER_CLIENT_ID in emulator.env.", id, a.tenant))
		return
	}
	if secret == "" {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	if !hmac.Equal([]byte(secret), []byte(p.secret)) {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000215,
			fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", p.clientID))
		return
	}
	scope := r.PostForm.Get("scope")
	resource, ok := a.resourceOf(w, strings.Fields(scope), true)
	if !ok {
		return
	}
	now := time.Now()
	tok, err := a.accessToken(p, p.clientID, resource, false, now)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", 50000, "could not sign the token: "+err.Error())
		return
	}
	life := int64(a.lifetime / time.Second)
	writeJSON(w, http.StatusOK, tokenResponse{TokenType: "Bearer", ExpiresIn: life, ExtExpiresIn: life, AccessToken: tok})
}

// resourceOf finds the one resource the scopes ask for (OpenID scopes left
// aside), answering the error itself. Client credentials need "/.default".
func (a *entraAuthority) resourceOf(w http.ResponseWriter, scopes []string, appOnly bool) (string, bool) {
	var res []string
	for _, s := range scopes {
		switch s {
		case "openid", "profile", "offline_access", "email":
			continue
		}
		res = append(res, s)
	}
	if len(res) != 1 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", 70011,
			fmt.Sprintf("The provided request must include exactly one resource scope, e.g. %s/.default; it has %d.", audienceDPS, len(res)))
		return "", false
	}
	s := res[0]
	if appOnly && !strings.HasSuffix(s, "/.default") {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", 1002012,
			fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", s))
		return "", false
	}
	i := strings.LastIndex(s, "/")
	if i <= len("https://") {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", 70011, fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope %s is not <resource>/<permission>.", s))
		return "", false
	}
	resource := s[:i]
	for _, known := range knownAudiences {
		if sameAudience(resource, known) {
			return resource, true
		}
	}
	writeOAuthError(w, http.StatusBadRequest, "invalid_resource", 500011,
		fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This emulator issues tokens for %s.", resource, a.tenant, strings.Join(knownAudiences, ", ")))
	return "", false
}

func (a *entraAuthority) serveDeviceCode(w http.ResponseWriter, r *http.Request, tenant string) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.")
		return
	}
	clientID := r.PostForm.Get("client_id")
	if clientID == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if _, ok := a.resourceOf(w, scopes, false); !ok {
		return
	}
	code, user := randomToken(32), strings.ToUpper(randomToken(7))[:9]
	const life = 15 * time.Minute
	a.mu.Lock()
	a.dropExpiredCodes(time.Now())
	a.deviceCodes[code] = &pendingDeviceCode{clientID: clientID, scopes: scopes, expires: time.Now().Add(life)}
	a.mu.Unlock()
	verify := a.base + "/devicelogin"
	writeJSON(w, http.StatusOK, map[string]any{
		"user_code":        user,
		"device_code":      code,
		"verification_uri": verify,
		"expires_in":       int(life / time.Second),
		"interval":         5,
		"message": fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate. "+
			"(The dpsconsole emulator signs you in by itself once the code has been polled.)", verify, user),
	})
}

func (a *entraAuthority) dropExpiredCodes(now time.Time) {
	for k, dc := range a.deviceCodes {
		if now.After(dc.expires) {
			delete(a.deviceCodes, k)
		}
	}
}

// deviceCodeToken answers a device-code poll: pending on the first, then
// approved (or declined) as Options.DeviceCodeAs says.
func (a *entraAuthority) deviceCodeToken(w http.ResponseWriter, r *http.Request) {
	code := r.PostForm.Get("device_code")
	a.mu.Lock()
	a.dropExpiredCodes(time.Now())
	dc := a.deviceCodes[code]
	if dc != nil {
		dc.polls++
		if dc.polls > 1 {
			delete(a.deviceCodes, code) // a device code is spent once
		}
	}
	a.mu.Unlock()
	switch {
	case dc == nil:
		writeOAuthError(w, http.StatusBadRequest, "expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid: the device code is unknown or has expired. Start the sign-in again.")
		return
	case dc.polls == 1:
		writeOAuthError(w, http.StatusBadRequest, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
		return
	case a.deviceCodeAs == DeviceCodeDecline:
		writeOAuthError(w, http.StatusBadRequest, "authorization_declined", 70000, "The user declined the sign-in (the emulator was started with the device code declined).")
		return
	}
	p := a.contributor
	if a.deviceCodeAs == DeviceCodeReader {
		p = a.reader
	}
	a.userTokens(w, p, dc.clientID, dc.scopes)
}

// refreshToken redeems a refresh token for another access token, possibly
// for another resource (what MSAL does for a second scope).
func (a *entraAuthority) refreshToken(w http.ResponseWriter, r *http.Request) {
	c, err := a.verify(r.PostForm.Get("refresh_token"), refreshAudience, time.Now())
	p := a.principalByObjectID(c.Oid)
	if err != nil || p == nil || !strings.EqualFold(c.Azp, r.PostForm.Get("client_id")) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. The refresh token is malformed, expired, not from this emulator or issued to another client; sign in again.")
		return
	}
	a.userTokens(w, p, c.Azp, strings.Fields(r.PostForm.Get("scope")))
}

// userTokens answers a user sign-in: access, refresh and ID token plus
// client_info, which MSAL needs to build the account it caches.
func (a *entraAuthority) userTokens(w http.ResponseWriter, p *principal, clientID string, scopes []string) {
	resource, ok := a.resourceOf(w, scopes, false)
	if !ok {
		return
	}
	now := time.Now()
	access, err := a.accessToken(p, clientID, resource, true, now)
	var refresh, id string
	if err == nil {
		rc := a.baseClaims(p, refreshAudience, now, refreshLifetime)
		rc.Azp = clientID
		refresh, err = a.sign(rc)
	}
	if err == nil {
		ic := a.baseClaims(p, clientID, now, a.lifetime)
		ic.Name, ic.PreferredUsername = p.label+" (emulator)", userName(p)
		id, err = a.sign(ic)
	}
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", 50000, "could not sign the token: "+err.Error())
		return
	}
	info, _ := json.Marshal(map[string]string{"uid": p.objectID, "utid": a.tenant})
	granted := resource + "/.default"
	if sameAudience(resource, audienceARM) {
		granted = strings.TrimSuffix(resource, "/") + "//.default"
	}
	life := int64(a.lifetime / time.Second)
	writeJSON(w, http.StatusOK, tokenResponse{
		TokenType: "Bearer", Scope: granted, ExpiresIn: life, ExtExpiresIn: life,
		AccessToken: access, RefreshToken: refresh, IDToken: id,
		ClientInfo: base64.RawURLEncoding.EncodeToString(info),
	})
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.NewReplacer("-", "A", "_", "B").Replace(base64.RawURLEncoding.EncodeToString(b))
}

// logRequest writes the debug-level request line of a listener, with the
// Authorization header reduced to its scheme. The check first keeps a
// disabled log free on the hot paths.
func (e *Emulator) logRequest(r *http.Request, listener string) {
	if !e.log.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	e.log.Debug("request", "listener", listener, "method", r.Method, "path", r.URL.Path, "authorization", redactAuthorization(r.Header.Get("Authorization")))
}

// redactAuthorization keeps only the scheme of an Authorization header, so a
// log line shows how a request was signed, never the credential.
func redactAuthorization(h string) string {
	if h == "" {
		return ""
	}
	scheme, _, _ := strings.Cut(h, " ")
	return scheme + " [REDACTED]"
}
