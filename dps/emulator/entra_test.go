package emulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// syncBuffer is a log sink tests read while the emulator writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startEntra starts an emulator with Entra on, logging at debug level into
// the returned buffer.
func startEntra(t *testing.T, opts Options) (*Emulator, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts.Entra = true
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.MQTTAddr = MQTTOff
	return startTest(t, opts), logs
}

// entraClientOptions is what a client sets to reach the emulator's
// authority: the emulator as the cloud, a transport trusting its CA.
func entraClientOptions(t testing.TB, e *Emulator) azcore.ClientOptions {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CertPool()}}
	t.Cleanup(tr.CloseIdleConnections)
	env := e.Env()
	return azcore.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: env.AuthorityHost,
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: env.ResourceManagerEndpoint, Audience: audienceARM},
			},
		},
		Transport: &http.Client{Transport: tr},
	}
}

func secretCredential(t testing.TB, e *Emulator, clientID, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(e.Env().TenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            entraClientOptions(t, e),
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func getToken(t testing.TB, cred azcore.TokenCredential, scope string) (azcore.AccessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
}

// claimsOf decodes a JWT's claims without checking it (the test checks the
// signature with the emulator's verify).
func claimsOf(t testing.TB, tok string) tokenClaims {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT (%d parts)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c tokenClaims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEntraClientSecretCredentialGetsTokens(t *testing.T) {
	e, logs := startEntra(t, Options{})
	env := e.Env()
	for _, v := range []string{env.TenantID, env.ClientID, env.ClientSecret, env.ReaderClientID, env.ReaderClientSecret, env.SubscriptionID} {
		if v == "" {
			t.Fatalf("Env lacks an Entra value: %+v", env)
		}
	}
	for _, tc := range []struct {
		name, clientID, secret, scope, aud, role string
	}{
		{"contributor DPS", env.ClientID, env.ClientSecret, "https://azure-devices-provisioning.net/.default", audienceDPS, roleDPSDataContributor},
		{"contributor hub", env.ClientID, env.ClientSecret, "https://iothubs.azure.net/.default", audienceHub, roleHubRegistry},
		{"contributor ARM", env.ClientID, env.ClientSecret, "https://management.core.windows.net//.default", audienceARM, roleContributor},
		{"reader DPS", env.ReaderClientID, env.ReaderClientSecret, "https://azure-devices-provisioning.net/.default", audienceDPS, roleDPSDataReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := getToken(t, secretCredential(t, e, tc.clientID, tc.secret), tc.scope)
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			if time.Until(tok.ExpiresOn) < 50*time.Minute {
				t.Errorf("token expires on %v, want about an hour from now", tok.ExpiresOn)
			}
			c, err := e.entra.verify(tok.Token, tc.aud, time.Now())
			if err != nil {
				t.Fatalf("the emulator does not accept its own token: %v", err)
			}
			if c.Tid != env.TenantID || c.AppID != tc.clientID || c.Oid == "" || !slices.Contains(c.Roles, tc.role) || c.Aud != tc.aud {
				t.Errorf("claims = %+v, want tid %s, appid %s, aud %s, role %q", c, env.TenantID, tc.clientID, tc.aud, tc.role)
			}
		})
	}
	if s := logs.String(); strings.Contains(s, env.ClientSecret) || strings.Contains(s, env.ReaderClientSecret) {
		t.Errorf("a client secret is in the log:\n%s", s)
	}
	if !strings.Contains(logs.String(), "authorization=") {
		t.Errorf("no request was logged at debug level:\n%s", logs.String())
	}
}

func TestEntraRefusesWrongSecretAndUnknownClientInAADShape(t *testing.T) {
	e, _ := startEntra(t, Options{})
	env := e.Env()
	wrong := "not-" + env.ClientSecret
	_, err := getToken(t, secretCredential(t, e, env.ClientID, wrong), audienceDPS+"/.default")
	var af *azidentity.AuthenticationFailedError
	if !errors.As(err, &af) || af.RawResponse == nil || af.RawResponse.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v, want an AuthenticationFailedError with a 401", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "AADSTS7000215") || !strings.Contains(msg, "invalid_client") || strings.Contains(msg, wrong) || strings.Contains(msg, env.ClientSecret) {
		t.Errorf("error = %s\nwant AADSTS7000215 invalid_client and no secret", msg)
	}

	_, err = getToken(t, secretCredential(t, e, newGUID(), env.ClientSecret), audienceDPS+"/.default")
	if err == nil || !strings.Contains(err.Error(), "AADSTS700016") {
		t.Errorf("unknown client: err = %v, want AADSTS700016", err)
	}
	_, err = getToken(t, secretCredential(t, e, env.ClientID, env.ClientSecret), "https://vault.azure.net/.default")
	if err == nil || !strings.Contains(err.Error(), "AADSTS500011") {
		t.Errorf("unknown resource: err = %v, want AADSTS500011", err)
	}
}

func TestEntraDeviceCodeCredentialSignsInAndRefreshes(t *testing.T) {
	e, logs := startEntra(t, Options{})
	env := e.Env()
	var prompts []azidentity.DeviceCodeMessage
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions:            entraClientOptions(t, e),
		TenantID:                 env.TenantID,
		DisableInstanceDiscovery: true,
		UserPrompt: func(_ context.Context, m azidentity.DeviceCodeMessage) error {
			prompts = append(prompts, m)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := getToken(t, cred, audienceDPS+"/.default")
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if len(prompts) != 1 || prompts[0].UserCode == "" || !strings.Contains(prompts[0].Message, prompts[0].UserCode) || !strings.HasPrefix(prompts[0].VerificationURL, env.AuthorityHost) {
		t.Fatalf("prompts = %+v, want one with a user code and the emulator's URL", prompts)
	}
	c, err := e.entra.verify(tok.Token, audienceDPS, time.Now())
	if err != nil || c.Oid != e.entra.contributor.objectID || !slices.Contains(c.Roles, roleDPSDataContributor) || c.Scp == "" {
		t.Fatalf("verify = %+v, %v; want the Contributor principal's user token", c, err)
	}
	// A second resource: MSAL redeems the refresh token, no second prompt.
	tok2, err := getToken(t, cred, audienceHub+"/.default")
	if err != nil {
		t.Fatalf("GetToken (hub): %v", err)
	}
	if _, err := e.entra.verify(tok2.Token, audienceHub, time.Now()); err != nil {
		t.Fatalf("hub token: %v", err)
	}
	if len(prompts) != 1 {
		t.Errorf("prompted %d times, want once (the refresh token covers the second resource)", len(prompts))
	}
	if s := logs.String(); strings.Contains(s, tok.Token) || strings.Contains(s, tok2.Token) {
		t.Errorf("a token is in the log")
	}
}

func TestEntraDeviceCodeDeclined(t *testing.T) {
	e, _ := startEntra(t, Options{DeviceCodeAs: DeviceCodeDecline})
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions: entraClientOptions(t, e), TenantID: e.Env().TenantID, DisableInstanceDiscovery: true,
		UserPrompt: func(context.Context, azidentity.DeviceCodeMessage) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	// MSAL reads the body of a device-code poll's 400 to tell "pending"
	// from a refusal, so azidentity's error shows the status only.
	_, err = getToken(t, cred, audienceDPS+"/.default")
	var af *azidentity.AuthenticationFailedError
	if !errors.As(err, &af) || af.RawResponse == nil || af.RawResponse.StatusCode != http.StatusBadRequest {
		t.Fatalf("err = %v, want a refused sign-in (400)", err)
	}
}

// The signing key, tenant and principals survive a restart; the secrets are
// only in emulator.env (0600), never in another file of the data dir.
func TestEntraIdentitySurvivesRestartAndSecretsStayInEnvFile(t *testing.T) {
	dir := t.TempDir()
	e, _ := startEntra(t, Options{DataDir: dir})
	env := e.Env()
	tok, err := getToken(t, secretCredential(t, e, env.ClientID, env.ClientSecret), audienceDPS+"/.default")
	if err != nil {
		t.Fatal(err)
	}
	e.Close()

	e2, _ := startEntra(t, Options{DataDir: dir})
	env2 := e2.Env()
	if env2.TenantID != env.TenantID || env2.ClientID != env.ClientID || env2.ClientSecret != env.ClientSecret ||
		env2.ReaderClientSecret != env.ReaderClientSecret || env2.SubscriptionID != env.SubscriptionID || env2.AuthorityHost != env.AuthorityHost {
		t.Fatalf("identity changed across a restart:\n%+v\n%+v", env, env2)
	}
	if _, err := e2.entra.verify(tok.Token, audienceDPS, time.Now()); err != nil {
		t.Errorf("a token of the first start is refused after the restart: %v", err)
	}
	for _, f := range []string{entraKeyFile, EnvFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	envFile, _ := os.ReadFile(filepath.Join(dir, EnvFile))
	for _, want := range []string{"AZURE_TENANT_ID=" + env.TenantID, "AZURE_CLIENT_SECRET=" + env.ClientSecret, "DPS_READER_CLIENT_SECRET=" + env.ReaderClientSecret,
		"AZURE_AUTHORITY_HOST=" + env.AuthorityHost, "AZURE_RESOURCE_MANAGER_ENDPOINT=", "DPS_NAME=", "DPS_RESOURCE_GROUP=", "AZURE_SUBSCRIPTION_ID="} {
		if !strings.Contains(string(envFile), want) {
			t.Errorf("emulator.env lacks %q", want)
		}
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == EnvFile {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, s := range []string{env.ClientSecret, env.ReaderClientSecret, tok.Token} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a client secret or token", p)
			}
		}
		return nil
	})
}

func TestEntraOffLeavesEnvAsBefore(t *testing.T) {
	e := startTest(t, Options{MQTTAddr: MQTTOff})
	if s := e.Env().String(); strings.Contains(s, "AZURE_") {
		t.Errorf("emulator.env names Entra values with Entra off:\n%s", s)
	}
	if _, err := Start(context.Background(), Options{DataDir: t.TempDir(), DisableLocalAuth: true}); err == nil {
		t.Error("DisableLocalAuth without Entra was accepted")
	}
}

// postForm posts a form to the emulator's authority and returns status and
// the decoded AAD error (if any).
func postForm(t *testing.T, e *Emulator, path string, form url.Values) (int, oauthError) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, strings.TrimSuffix(e.Env().AuthorityHost, "/")+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := entraClientOptions(t, e).Transport.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var oe oauthError
	json.NewDecoder(resp.Body).Decode(&oe)
	return resp.StatusCode, oe
}

func TestEntraTokenEndpointErrors(t *testing.T) {
	e, _ := startEntra(t, Options{})
	env := e.Env()
	tokenPath := "/" + env.TenantID + "/oauth2/v2.0/token"
	cc := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {env.ClientID}, "client_secret": {env.ClientSecret}, "scope": {audienceDPS + "/.default"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		status int
		code   string
		aadsts int
	}{
		{"no grant", tokenPath, cc("grant_type", ""), 400, "invalid_request", 900144},
		{"unknown grant", tokenPath, cc("grant_type", "password"), 400, "unsupported_grant_type", 70003},
		{"no secret", tokenPath, cc("client_secret", ""), 401, "invalid_client", 7000218},
		{"scope without .default", tokenPath, cc("scope", audienceDPS+"/user_impersonation"), 400, "invalid_scope", 1002012},
		{"two resources", tokenPath, cc("scope", audienceDPS+"/.default "+audienceHub+"/.default"), 400, "invalid_scope", 70011},
		{"unknown tenant", "/" + newGUID() + "/oauth2/v2.0/token", cc(), 400, "invalid_request", 90002},
		{"unknown device code", tokenPath, url.Values{"grant_type": {"device_code"}, "client_id": {env.ClientID}, "device_code": {"nope"}}, 400, "expired_token", 70020},
		{"bad refresh token", tokenPath, url.Values{"grant_type": {"refresh_token"}, "client_id": {env.ClientID}, "refresh_token": {"x.y.z"}, "scope": {audienceDPS + "/.default"}}, 400, "invalid_grant", 9002313},
	} {
		st, oe := postForm(t, e, tc.path, tc.form)
		if st != tc.status || oe.Error != tc.code || len(oe.ErrorCodes) != 1 || oe.ErrorCodes[0] != tc.aadsts ||
			!strings.HasPrefix(oe.ErrorDescription, "AADSTS"+strconv.Itoa(tc.aadsts)+": ") || oe.TraceID == "" || oe.CorrelationID == "" {
			t.Errorf("%s: %d %+v, want %d %s AADSTS%d", tc.name, st, oe, tc.status, tc.code, tc.aadsts)
		}
		if strings.Contains(oe.ErrorDescription, env.ClientSecret) {
			t.Errorf("%s: the error names the secret", tc.name)
		}
	}
	// A refresh token is bound to the client it was issued to.
	p := e.entra.contributor
	rc := e.entra.baseClaims(p, refreshAudience, time.Now(), time.Hour)
	rc.Azp = "client-a"
	refresh, _ := e.entra.sign(rc)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "scope": {audienceDPS + "/.default"}}
	form.Set("client_id", "client-b")
	if st, oe := postForm(t, e, tokenPath, form); st != 400 || oe.Error != "invalid_grant" {
		t.Errorf("refresh by another client: %d %+v", st, oe)
	}
	form.Set("client_id", "client-a")
	if st, oe := postForm(t, e, tokenPath, form); st != 200 {
		t.Errorf("refresh by its client: %d %+v", st, oe)
	}
}

func TestEntraRefusesLostTenantWhenTheKeyRemains(t *testing.T) {
	dir := t.TempDir()
	e, _ := startEntra(t, Options{DataDir: dir})
	if _, err := e.store.exec(context.Background(), `DELETE FROM settings WHERE name LIKE 'entra_%' AND name != 'entra_addr'`); err != nil {
		t.Fatal(err)
	}
	e.Close()
	_, err := Start(context.Background(), Options{DataDir: dir, Entra: true, MQTTAddr: MQTTOff})
	if err == nil || !strings.Contains(err.Error(), entraKeyFile) || !strings.Contains(err.Error(), "lost the Entra tenant") {
		t.Fatalf("err = %v, want the lost tenant refused", err)
	}
}

// azidentity's device-code credential defaults to the "organizations"
// tenant and its own public client ID; the emulator takes both.
func TestEntraDeviceCodeWithAzidentityDefaults(t *testing.T) {
	e, _ := startEntra(t, Options{DeviceCodeAs: DeviceCodeReader})
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions: entraClientOptions(t, e), DisableInstanceDiscovery: true,
		UserPrompt: func(context.Context, azidentity.DeviceCodeMessage) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := getToken(t, cred, audienceARM+"/.default")
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	c, err := e.entra.verify(tok.Token, audienceARM, time.Now())
	if err != nil || c.Oid != e.entra.reader.objectID || c.Tid != e.Env().TenantID {
		t.Fatalf("claims %+v, %v; want the Reader in the emulator's tenant", c, err)
	}
}
