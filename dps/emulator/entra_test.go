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
	"os"
	"path/filepath"
	"slices"
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
