package signin_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/signin"
)

// These tests sign in against the emulator's Entra-like authority with
// azidentity itself: only the endpoints differ from Azure.

func startEntra(t *testing.T, opts emulator.Options) (*emulator.Emulator, *http.Client) {
	t.Helper()
	opts.DataDir, opts.Entra, opts.MQTTAddr, opts.Seed = t.TempDir(), true, emulator.MQTTOff, "none"
	em, err := emulator.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	tr, err := dps.NewTransport(em.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return em, tr
}

// emulatorEnv sets what a sourced emulator.env sets for azidentity, as
// principal clientID, and clears the rest of the chain's configuration.
func emulatorEnv(t *testing.T, env emulator.Env, clientID, secret string) {
	for k, v := range map[string]string{
		"AZURE_TENANT_ID": env.TenantID, "AZURE_CLIENT_ID": clientID, "AZURE_CLIENT_SECRET": secret,
		"AZURE_AUTHORITY_HOST": env.AuthorityHost, "AZURE_RESOURCE_MANAGER_ENDPOINT": env.ResourceManagerEndpoint,
		"AZURE_TOKEN_CREDENTIALS": "", "AZURE_CLIENT_CERTIFICATE_PATH": "", "AZURE_USERNAME": "", "AZURE_FEDERATED_TOKEN_FILE": "",
	} {
		t.Setenv(k, v)
	}
	if clientID == "" {
		os.Unsetenv("AZURE_CLIENT_ID")
	}
	os.Unsetenv("AZURE_TOKEN_CREDENTIALS")
}

func TestDefaultChainSignsInWithTheEnvironmentCredential(t *testing.T) {
	em, tr := startEntra(t, emulator.Options{})
	env := em.Env()
	emulatorEnv(t, env, env.ClientID, env.ClientSecret)
	cred, err := signin.NewCredential(signin.Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	id, err := signin.WhoAmI(context.Background(), cred, dps.Scope)
	if err != nil {
		t.Fatal(err)
	}
	if id.TenantID != env.TenantID || id.AppID != env.ClientID {
		t.Errorf("signed in as %+v, want app %s in tenant %s", id, env.ClientID, env.TenantID)
	}
	// A wrong secret: the environment credential fails with Entra's answer
	// (and no other credential is tried), without the secret in it.
	emulatorEnv(t, env, env.ClientID, "not-the-secret")
	cred, _ = signin.NewCredential(signin.Options{Transport: tr})
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{dps.Scope}})
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") || strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), env.ClientSecret) {
		t.Errorf("wrong secret: %v", err)
	}
	if msg := signin.ErrorMessage(err); !strings.HasPrefix(msg, "Microsoft Entra ID refused the sign-in (401 invalid_client): AADSTS7000215") || strings.Contains(msg, "\n") {
		t.Errorf("ErrorMessage: %q, want Entra's description in one line", msg)
	}
}

func TestDeviceCodeIsTheFallbackAndShowsItsPrompt(t *testing.T) {
	em, tr := startEntra(t, emulator.Options{})
	env := em.Env()
	emulatorEnv(t, env, "", "")
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "AzureCLICredential") // no managed-identity probe off this machine
	t.Setenv("PATH", t.TempDir())                             // and no az
	var prompts []signin.DeviceCodePrompt
	cred, err := signin.NewCredential(signin.Options{TenantID: env.TenantID, Transport: tr, DeviceCode: func(_ context.Context, p signin.DeviceCodePrompt) error {
		prompts = append(prompts, p)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := signin.WhoAmI(ctx, cred, dps.Scope)
	if err != nil {
		t.Fatal(err)
	}
	if len(prompts) != 1 || prompts[0].UserCode == "" || !strings.Contains(prompts[0].Message, prompts[0].UserCode) {
		t.Errorf("prompts %+v, want one naming its code", prompts)
	}
	if id.TenantID != env.TenantID || id.Name == "" {
		t.Errorf("device code signed in as %+v", id)
	}
	// Without the callback there is no fallback: the chain says what it tried.
	cred, _ = signin.NewCredential(signin.Options{TenantID: env.TenantID, Transport: tr})
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{dps.Scope}}); err == nil || !strings.Contains(err.Error(), "AzureCLICredential") {
		t.Errorf("no fallback: %v", err)
	}
}
