package emulator

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// entra.go: an authority shaped like Microsoft Entra ID v2.0 (OpenID
// configuration, JWKS, the OAuth2 token and device-code endpoints), so
// azidentity/MSAL reach it unchanged with instance discovery disabled. Its
// tokens are RS256 JWTs signed by the emulator's own key; the emulator's DPS,
// hubs and ARM surface accept them.

// entraKeyFile holds the token-signing key (PKCS#1 PEM, 0600). Tokens and the
// client secrets (derived from it) survive restarts with it.
const entraKeyFile = "entra-key.pem"

// Token audiences, as Azure names the resources.
const (
	audienceDPS = "https://azure-devices-provisioning.net"
	audienceHub = "https://iothubs.azure.net"
	audienceARM = "https://management.core.windows.net/"
)

// knownAudiences are the resources the authority issues tokens for; ARM
// answers to both of its names, as Azure does.
var knownAudiences = []string{audienceDPS, audienceHub, audienceARM, "https://management.azure.com/"}

// Built-in Azure role names the two principals hold.
const (
	roleDPSDataContributor = "Device Provisioning Service Data Contributor"
	roleDPSDataReader      = "Device Provisioning Service Data Reader"
	roleHubDataContributor = "IoT Hub Data Contributor"
	roleHubDataReader      = "IoT Hub Data Reader"
	roleHubRegistry        = "IoT Hub Registry Contributor"
	roleHubTwin            = "IoT Hub Twin Contributor"
	roleContributor        = "Contributor"
	roleReader             = "Reader"
)

// Device-code answers Options.DeviceCodeAs selects.
const (
	DeviceCodeContributor = "contributor" // the default: approved as the Contributor principal
	DeviceCodeReader      = "reader"      // approved as the Reader principal
	DeviceCodeDecline     = "decline"     // the user declines: authorization_declined
)

// principal is a service principal (an app registration with a secret).
type principal struct {
	label    string // "Contributor" or "Reader", for messages
	clientID string
	objectID string
	secret   string
	roles    []string
}

// entraAuthority is the running authority. The emulator's listener for it
// also serves ARM (arm.go).
type entraAuthority struct {
	base         string // https://host[:port], no trailing slash
	tenant       string
	subscription string
	key          *rsa.PrivateKey
	kid          string
	lifetime     time.Duration
	deviceCodeAs string
	contributor  *principal
	reader       *principal

	mu          sync.Mutex
	deviceCodes map[string]*pendingDeviceCode // by device_code
}

type pendingDeviceCode struct {
	clientID string
	scopes   []string
	expires  time.Time
	polls    int
}

// loadEntra reads (or on the first --entra start makes) the tenant,
// subscription and principals, kept in the settings, and the signing key.
// The secrets are derived from the key, so no file but emulator.env holds them.
func (e *Emulator) loadEntra(ctx context.Context, base string) (*entraAuthority, error) {
	key, err := loadOrCreateEntraKey(e.opts.DataDir)
	if err != nil {
		return nil, err
	}
	names := []string{"entra_tenant", "entra_subscription", "entra_contributor_client", "entra_contributor_object", "entra_reader_client", "entra_reader_object"}
	vals := map[string]string{}
	missing := map[string]string{}
	for _, n := range names {
		v, err := e.store.setting(ctx, n)
		if err != nil {
			return nil, err
		}
		if v == "" {
			v = newGUID()
			missing[n] = v
		}
		vals[n] = v
	}
	if len(missing) > 0 {
		if err := e.store.setSettings(ctx, missing); err != nil {
			return nil, err
		}
	}
	a := &entraAuthority{
		base:         base,
		tenant:       vals["entra_tenant"],
		subscription: vals["entra_subscription"],
		key:          key,
		kid:          keyID(&key.PublicKey),
		lifetime:     e.opts.TokenLifetime,
		deviceCodeAs: e.opts.DeviceCodeAs,
		deviceCodes:  map[string]*pendingDeviceCode{},
	}
	if a.lifetime <= 0 {
		a.lifetime = time.Hour
	}
	a.contributor = a.newPrincipal("Contributor", vals["entra_contributor_client"], vals["entra_contributor_object"],
		roleDPSDataContributor, roleHubRegistry, roleHubTwin, roleHubDataContributor, roleContributor)
	a.reader = a.newPrincipal("Reader", vals["entra_reader_client"], vals["entra_reader_object"],
		roleDPSDataReader, roleHubDataReader, roleReader)
	return a, nil
}

func (a *entraAuthority) newPrincipal(label, clientID, objectID string, roles ...string) *principal {
	return &principal{label: label, clientID: clientID, objectID: objectID, secret: a.deriveSecret(clientID), roles: roles}
}

// deriveSecret is the client secret of clientID: an HMAC under the signing
// key, so it is stable across restarts without being stored.
func (a *entraAuthority) deriveSecret(clientID string) string {
	seed := sha256.Sum256(x509.MarshalPKCS1PrivateKey(a.key))
	m := hmac.New(sha256.New, seed[:])
	m.Write([]byte("client-secret/" + clientID))
	return "emu~" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *entraAuthority) principalByClientID(id string) *principal {
	for _, p := range []*principal{a.contributor, a.reader} {
		if strings.EqualFold(p.clientID, id) {
			return p
		}
	}
	return nil
}

func (a *entraAuthority) principalByObjectID(id string) *principal {
	for _, p := range []*principal{a.contributor, a.reader} {
		if strings.EqualFold(p.objectID, id) {
			return p
		}
	}
	return nil
}

func (a *entraAuthority) issuer() string { return a.base + "/" + a.tenant + "/v2.0" }

func loadOrCreateEntraKey(dir string) (*rsa.PrivateKey, error) {
	path := filepath.Join(dir, entraKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := writeFileAtomic(path, pemBytes, 0o600); err != nil {
			return nil, fmt.Errorf("emulator: write the token-signing key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("emulator: read the token-signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("emulator: %s is not PEM; delete it to make a new token-signing key (tokens and client secrets then change)", path)
	}
	key, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("emulator: %s is not an RSA private key (the key is not shown); delete it to make a new one", path)
	}
	return key, nil
}

// keyID names the signing key in the JWKS and in token headers.
func keyID(pub *rsa.PublicKey) string {
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(pub))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// tokenClaims are the claims the authority puts into access and ID tokens.
type tokenClaims struct {
	Aud               string   `json:"aud"`
	Iss               string   `json:"iss"`
	Iat               int64    `json:"iat"`
	Nbf               int64    `json:"nbf"`
	Exp               int64    `json:"exp"`
	AppID             string   `json:"appid,omitempty"`
	Azp               string   `json:"azp,omitempty"`
	Idtyp             string   `json:"idtyp,omitempty"`
	Name              string   `json:"name,omitempty"`
	Oid               string   `json:"oid"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Roles             []string `json:"roles,omitempty"`
	Scp               string   `json:"scp,omitempty"`
	Sub               string   `json:"sub"`
	Tid               string   `json:"tid"`
	Uti               string   `json:"uti,omitempty"`
	Ver               string   `json:"ver"`
}

// sign encodes claims as an RS256 JWT.
func (a *entraAuthority) sign(c tokenClaims) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": a.kid})
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signed := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Why a bearer token is refused. The messages never hold the token.
var (
	errTokenMalformed = errors.New("the bearer token is not a JWT")
	errTokenSignature = errors.New("the bearer token's signature does not verify against the emulator's signing key (a token from another authority or a changed token)")
	errTokenIssuer    = errors.New("the bearer token was issued by another authority")
	errTokenExpired   = errors.New("the bearer token has expired; get a new one")
	errTokenNotYet    = errors.New("the bearer token is not valid yet (nbf is in the future)")
	errTokenAudience  = errors.New("the bearer token is for another audience")
)

// verify checks a JWT's signature, issuer, lifetime and audience and returns
// its claims.
func (a *entraAuthority) verify(tok, audience string, now time.Time) (tokenClaims, error) {
	var c tokenClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, errTokenMalformed
	}
	hdrJSON, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	body, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return c, errTokenMalformed
	}
	var hdr struct{ Alg, Kid string }
	if json.Unmarshal(hdrJSON, &hdr) != nil {
		return c, errTokenMalformed
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if hdr.Alg != "RS256" || hdr.Kid != a.kid || rsa.VerifyPKCS1v15(&a.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return c, errTokenSignature
	}
	if json.Unmarshal(body, &c) != nil {
		return c, errTokenMalformed
	}
	switch {
	case c.Iss != a.issuer():
		return c, errTokenIssuer
	case now.Unix() >= c.Exp:
		return c, errTokenExpired
	case now.Unix() < c.Nbf:
		return c, errTokenNotYet
	case !sameAudience(c.Aud, audience):
		return c, fmt.Errorf("%w: it is for %q, this API takes %q", errTokenAudience, c.Aud, strings.TrimSuffix(audience, "/"))
	}
	return c, nil
}

// sameAudience compares resource URIs, ignoring a trailing slash, with ARM's
// two names taken as one.
func sameAudience(got, want string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSuffix(s, "/"))
		if s == "https://management.azure.com" {
			s = "https://management.core.windows.net"
		}
		return s
	}
	return norm(got) == norm(want)
}

// accessToken issues a token for audience to p; user tokens (device code)
// carry scp and a user name, app tokens (client credentials) idtyp=app.
func (a *entraAuthority) accessToken(p *principal, clientID, audience string, user bool, now time.Time) (string, error) {
	c := a.baseClaims(p, audience, now, a.lifetime)
	c.AppID, c.Azp = clientID, clientID
	c.Roles = p.roles
	c.Uti = newGUID()
	if user {
		c.Scp = "user_impersonation"
		c.Name, c.PreferredUsername = p.label+" (emulator)", userName(p)
	} else {
		c.Idtyp = "app"
	}
	return a.sign(c)
}

func (a *entraAuthority) baseClaims(p *principal, audience string, now time.Time, life time.Duration) tokenClaims {
	return tokenClaims{Aud: audience, Iss: a.issuer(), Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(life).Unix(),
		Oid: p.objectID, Sub: p.objectID, Tid: a.tenant, Ver: "2.0"}
}

func userName(p *principal) string { return strings.ToLower(p.label) + "@dpsconsole-emulator.local" }

// The refresh token is a JWT for this audience only the token endpoint takes.
const refreshAudience = "urn:dpsconsole-emulator:refresh"

const refreshLifetime = 90 * 24 * time.Hour

// handle serves the listener: ARM first (its paths start with /subscriptions
// or /tenants), then the authority.
func (e *Emulator) serveEntra(w http.ResponseWriter, r *http.Request) {
	if !capBody(w, r, e.opts.limits.maxBody, func(msg string) { writeOAuthError(w, http.StatusRequestEntityTooLarge, "invalid_request", 90000, msg) }) {
		return
	}
	e.log.Debug("entra/ARM request", "method", r.Method, "path", r.URL.Path, "authorization", redactAuthorization(r.Header.Get("Authorization")))
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
	if err != nil || p == nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. The refresh token is malformed, expired or not from this emulator; sign in again.")
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

// redactAuthorization keeps only the scheme of an Authorization header, so a
// log line shows how a request was signed, never the credential.
func redactAuthorization(h string) string {
	if h == "" {
		return ""
	}
	scheme, _, _ := strings.Cut(h, " ")
	return scheme + " [REDACTED]"
}

// The emulated DPS's ARM identity.
const (
	dpsResourceName  = "dpsconsole-emulator"
	dpsResourceGroup = "dpsconsole-emulator-rg"
)

func checkEntraOptions(opts *Options) error {
	switch opts.DeviceCodeAs {
	case "", DeviceCodeContributor, DeviceCodeReader, DeviceCodeDecline:
	default:
		return fmt.Errorf("emulator: unknown DeviceCodeAs %q; use %s, %s or %s", opts.DeviceCodeAs, DeviceCodeContributor, DeviceCodeReader, DeviceCodeDecline)
	}
	if opts.TokenLifetime < 0 {
		return fmt.Errorf("emulator: token lifetime %v is negative", opts.TokenLifetime)
	}
	if opts.DisableLocalAuth && !opts.Entra {
		return errors.New("emulator: disabling local (SAS) authentication needs Entra on, or nothing could sign in")
	}
	if opts.EntraAddr == "" {
		opts.EntraAddr = "127.0.0.1:0"
	}
	return nil
}

// listenEntra opens the authority's listener (reusing the port of the last
// start, as the issuer in tokens names it) and loads the authority.
func (e *Emulator) listenEntra(ctx context.Context) (net.Listener, error) {
	prev, err := e.store.setting(ctx, "entra_addr")
	if err != nil {
		return nil, err
	}
	ln, err := listenReusing(e.opts.EntraAddr, prev)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen for the Entra authority on %s: %w", e.opts.EntraAddr, err)
	}
	if err := e.store.setSetting(ctx, "entra_addr", ln.Addr().String()); err != nil {
		ln.Close()
		return nil, err
	}
	if e.entra, err = e.loadEntra(ctx, "https://"+hostName(e.opts.EntraAddr, ln.Addr())); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
