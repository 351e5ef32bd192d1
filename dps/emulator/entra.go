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
	"net"
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
// hubs and ARM surface accept them. The HTTP endpoints are in entra_http.go.

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

	mu           sync.Mutex
	deviceCodes  map[string]*pendingDeviceCode // by device_code
	unregistered []string                      // more subscriptions, without Microsoft.Devices (AddUnregisteredSubscription)
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
// The settings come first: a key in the data dir then proves they were made,
// so lost ones are refused rather than silently replaced.
func (e *Emulator) loadEntra(ctx context.Context, base string) (*entraAuthority, error) {
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
	keyPath := filepath.Join(e.opts.DataDir, entraKeyFile)
	if len(missing) > 0 {
		if _, err := os.Stat(keyPath); err == nil {
			return nil, fmt.Errorf("emulator: the database %s has lost the Entra tenant and principals, yet %s is there, so --entra was used before: "+
				"put the original %s back to keep them, or delete %s to make a new tenant (clients must then take the new emulator.env)",
				filepath.Join(e.opts.DataDir, dbFile), keyPath, dbFile, keyPath)
		}
		if err := e.store.setSettings(ctx, missing); err != nil {
			return nil, err
		}
	}
	key, err := loadOrCreateEntraKey(e.opts.DataDir)
	if err != nil {
		return nil, err
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
