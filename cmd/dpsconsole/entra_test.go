package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/dps/signin"
)

// These tests run the CLI against a standalone emulator with Entra on, the
// way an operator does after reading its emulator.env: azidentity signs in
// (the environment credential as the Contributor or the Reader, or a fake
// az), ARM finds the DPS, and bearer tokens reach its service API.

// entraEmulator starts an Entra emulator and sets its emulator.env in the
// environment as principal clientID (the Contributor unless reader).
func entraEmulator(t *testing.T, opts emulator.Options, reader bool) (*cli, emulator.Env) {
	t.Helper()
	c, env, _ := entraEmulatorOf(t, opts, reader)
	return c, env
}

// entraEmulatorOf is entraEmulator, with the emulator.
func entraEmulatorOf(t *testing.T, opts emulator.Options, reader bool) (*cli, emulator.Env, *emulator.Emulator) {
	t.Helper()
	opts.DataDir, opts.Entra, opts.MQTTAddr = t.TempDir(), true, emulator.MQTTOff
	if opts.Seed == "" {
		opts.Seed = "demo"
	}
	if len(opts.HubAddrs) == 0 {
		opts.HubAddrs = []string{"127.0.0.1:0", "127.0.0.1:0"}
	}
	em, err := emulator.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	c := newCLI(t)
	env := em.Env()
	id, secret := env.ClientID, env.ClientSecret
	if reader {
		id, secret = env.ReaderClientID, env.ReaderClientSecret
	}
	for k, v := range map[string]string{
		// All of emulator.env, as an operator exports it: the SAS lines too.
		"DPS_CONNECTION_STRING": env.DPSConnectionString, "DPS_CA_FILE": env.CAFile, "DPS_ID_SCOPE": "", "DPS_DEVICE_ENDPOINT": "",
		"IOTHUB_CONNECTION_STRING": "", "AZURE_TENANT_ID": env.TenantID, "AZURE_CLIENT_ID": id, "AZURE_CLIENT_SECRET": secret,
		"AZURE_AUTHORITY_HOST": env.AuthorityHost, "AZURE_RESOURCE_MANAGER_ENDPOINT": env.ResourceManagerEndpoint,
		"AZURE_SUBSCRIPTION_ID": env.SubscriptionID, "DPS_NAME": env.DPSName, "DPS_RESOURCE_GROUP": env.DPSResourceGroup,
	} {
		t.Setenv(k, v)
	}
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "")
	os.Unsetenv("AZURE_TOKEN_CREDENTIALS")
	return c, env, em
}

func TestTargetsListFindsTheEmulatorsDPS(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{}, false)
	var got []discovery.DPS
	if err := json.Unmarshal([]byte(c.ok("targets", "list", "--output", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != env.DPSName || got[0].IDScope != env.IDScope || got[0].DeviceHost != env.DeviceEndpoint || len(got[0].Hubs) != 2 {
		t.Fatalf("targets list: %+v, want %s with scope %s, device host %s and 2 hubs", got, env.DPSName, env.IDScope, env.DeviceEndpoint)
	}
	lines := strings.Split(strings.TrimSpace(c.ok("targets", "list", "--output", "jsonl")), "\n")
	var line discovery.DPS
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &line) != nil || line.Name != env.DPSName || line.IDScope != env.IDScope {
		t.Fatalf("targets list --output jsonl: %q, want one line naming %s", lines, env.DPSName)
	}
	table := c.ok("targets", "list", "--subscription", env.SubscriptionID)
	for _, want := range []string{"NAME", env.DPSName, env.DPSResourceGroup, env.IDScope, got[0].Hubs[0].Host, "1 DPS instance"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if out := c.ok("targets", "list", "--resource-group", "other-rg"); !strings.Contains(out, "0 DPS instances") {
		t.Errorf("--resource-group other-rg:\n%s", out)
	}
	c.fails(1, []string{"targets", "list", "--subscription", "No Such Subscription"}, `no subscription named "No Such Subscription"`)
	// A wrong secret: Entra's own answer, no secret in it.
	t.Setenv("AZURE_CLIENT_SECRET", "wrong-secret")
	out := c.fails(1, []string{"targets", "list"}, "AADSTS7000215", "az login")
	if strings.Contains(out, "wrong-secret") || strings.Contains(out, env.ClientSecret) {
		t.Errorf("the secret is in the output:\n%s", out)
	}
}

func TestDPSFlagUsesABearerTokenAndIsRemembered(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{}, false)
	out := c.ok("--dps", env.DPSName, "groups", "list")
	if !strings.Contains(out, "mylegacydevices") {
		t.Fatalf("groups list --dps:\n%s", out)
	}
	// Remembered, names only, 0600; --target azure reopens it.
	b, err := os.ReadFile(filepath.Join(c.stateDir, discovery.ChoiceFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{env.ClientSecret, "SharedAccessKey", "Bearer", "eyJ"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("target.json holds %q:\n%s", secret, b)
		}
	}
	if fi, _ := os.Stat(filepath.Join(c.stateDir, discovery.ChoiceFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("target.json is %v", fi.Mode().Perm())
	}
	if out := c.ok("--target", "azure", "groups", "show", "mylegacydevices"); !strings.Contains(out, "static") {
		t.Errorf("--target azure did not reopen the DPS:\n%s", out)
	}
	c.fails(1, []string{"--dps", "nope", "groups", "list"}, `no DPS named "nope"`, "targets list")
}

func TestRegisterTakesScopeAndEndpointFromDiscovery(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{}, false)
	code, out, errOut := c.run("--dps", env.DPSName, "register", "--registration-id", "entra-dev-1", "--group", "mylegacydevices", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var st dps.DeviceRegistrationState
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Status != dps.StatusAssigned {
		t.Fatalf("state %+v (%v)", st, err)
	}
	if !strings.Contains(errOut, "in scope "+env.IDScope+" at "+env.DeviceEndpoint) {
		t.Errorf("stderr does not show the discovered scope and endpoint:\n%s", errOut)
	}
	// The hub side signed in too: the device, read with a bearer token.
	if out := c.ok("--dps", env.DPSName, "hub", "device", "show", "entra-dev-1"); !strings.Contains(out, "entra-dev-1") {
		t.Errorf("hub device show --dps:\n%s", out)
	}
}

func TestReaderIsRefusedADeleteWithTheRoleNamed(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{}, true)
	if out := c.ok("--dps", env.DPSName, "groups", "list"); !strings.Contains(out, "mylegacydevices") {
		t.Fatalf("the Reader cannot list:\n%s", out)
	}
	c.fails(1, []string{"--dps", env.DPSName, "groups", "delete", "mylegacydevices"},
		"403", dps.RoleDataContributor, "Microsoft.Devices/provisioningServices/enrollmentGroups/delete", "/providers/Microsoft.Devices/provisioningServices/"+env.DPSName)
	if out := c.ok("--dps", env.DPSName, "groups", "show", "mylegacydevices"); !strings.Contains(out, "static") {
		t.Errorf("the refused delete deleted:\n%s", out)
	}
	// On the hub side: reading works, writing the twin is refused with its role.
	if out := c.ok("--dps", env.DPSName, "hub", "device", "show", "fleet-sensor-001"); !strings.Contains(out, "fleet-sensor-001") {
		t.Errorf("the Reader cannot read a hub device:\n%s", out)
	}
	c.fails(1, []string{"--dps", env.DPSName, "hub", "twin", "update", "fleet-sensor-001", "--desired", `{"interval":30}`},
		"401", hub.RoleTwinContributor, "Microsoft.Devices/IotHubs/twins/write") // IoT Hub answers a missing role with 401
	// ListKeys needs more than Reader: --auth sas-from-arm says so.
	c.fails(1, []string{"--dps", env.DPSName, "--auth", "sas-from-arm", "groups", "list"}, "403", "AuthorizationFailed", "listkeys")
}

func TestSASFromARMOnlyWhenAsked(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{}, false)
	if out := c.ok("--dps", env.DPSName, "--auth", "sas-from-arm", "groups", "list"); !strings.Contains(out, "mylegacydevices") {
		t.Fatalf("sas-from-arm:\n%s", out)
	}
	b, _ := os.ReadFile(filepath.Join(c.stateDir, discovery.ChoiceFile))
	if !strings.Contains(string(b), `"auth": "sas-from-arm"`) || strings.Contains(string(b), "SharedAccessKey") {
		t.Errorf("target.json:\n%s", b)
	}
	// Reopened, it signs in: the key is read again only when asked again.
	a := &app{stateDir: c.stateDir, azure: azureFlags{target: targetAzure}, stdio: stdio{err: io.Discard}}
	tg, err := a.openTarget(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if !tg.client.SignedIn() || tg.auth != authLogin {
		t.Errorf("the remembered sas-from-arm target reopened with auth %q (signed in %v)", tg.auth, tg.client.SignedIn())
	}
}

func TestLocalAuthDisabledRefusesSASWhileEntraWorks(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{DisableLocalAuth: true}, false)
	// The connection string of emulator.env: refused with the service's error.
	errOut := c.fails(1, []string{"groups", "list"}, "401", "local authentication", "accepts only Microsoft Entra ID", "--dps NAME")
	if strings.Contains(errOut, "check the connection string") {
		t.Errorf("a key cannot help, yet the message suggests checking it:\n%s", errOut)
	}
	// Already --dps: the way out is to drop sas-from-arm, and it says so.
	c.fails(1, []string{"--dps", env.DPSName, "--auth", "sas-from-arm", "groups", "list"}, "401", "--auth login")
	if out := c.ok("--dps", env.DPSName, "groups", "list"); !strings.Contains(out, "mylegacydevices") {
		t.Errorf("Entra refused with local auth disabled:\n%s", out)
	}
	// The hubs too: SAS refused, the signed-in registry client reads.
	hubHost := strings.Split(strings.Split(env.HubConnectionStrings[0], "HostName=")[1], ";")[0]
	t.Setenv("IOTHUB_CONNECTION_STRING", env.HubConnectionStrings[0])
	errOut = c.fails(1, []string{"hub", "device", "show", "fleet-sensor-001", "--hub", hubHost}, "401", "accepts only Microsoft Entra ID")
	if strings.Contains(errOut, "check the hub connection string") {
		t.Errorf("the hub message suggests checking the key:\n%s", errOut)
	}
	if out := c.ok("--dps", env.DPSName, "hub", "device", "show", "fleet-sensor-001"); !strings.Contains(out, "fleet-sensor-001") {
		t.Errorf("hub device show signed in, local auth disabled:\n%s", out)
	}
}

func TestExpiredTokenIsRefreshedByAzidentity(t *testing.T) {
	_, env := entraEmulator(t, emulator.Options{TokenLifetime: 2 * time.Second}, false)
	tr, err := dps.NewTransport(mustRead(t, env.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	cred, err := signin.NewCredential(signin.Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingCredential{next: cred}
	client, err := dps.NewClient(strings.Split(strings.Split(env.DPSConnectionString, "HostName=")[1], ";")[0], counted, clientOptions(tr))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.GetEnrollmentGroup(ctx, "mylegacydevices"); err != nil {
		t.Fatal(dps.ErrorMessage(err))
	}
	time.Sleep(2500 * time.Millisecond) // the first token has expired
	if _, err := client.GetEnrollmentGroup(ctx, "mylegacydevices"); err != nil {
		t.Fatal(dps.ErrorMessage(err))
	}
	if len(counted.tokens) < 2 || counted.tokens[0] == counted.tokens[len(counted.tokens)-1] {
		t.Errorf("%d tokens handed out, want a fresh one after expiry", len(counted.tokens))
	}
}

type countingCredential struct {
	next   azcore.TokenCredential
	tokens []string
}

func (c *countingCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tk, err := c.next.GetToken(ctx, o)
	if err == nil {
		c.tokens = append(c.tokens, tk.Token)
	}
	return tk, err
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAzureCLICredentialThroughAFakeAz(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{}, false)
	tr, err := dps.NewTransport(mustRead(t, env.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	mint, err := azidentity.NewClientSecretCredential(env.TenantID, env.ClientID, env.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: signin.Private(env.AuthorityHost, env.ResourceManagerEndpoint), Transport: tr}, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, resource := range []string{"https://management.core.windows.net/", "https://azure-devices-provisioning.net", "https://iothubs.azure.net"} {
		tk, err := mint.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{strings.TrimSuffix(resource, "/") + "/.default"}})
		if err != nil {
			t.Fatal(err)
		}
		tokens[resource] = tk.Token
	}
	dir := t.TempDir()
	argsLog := writeFakeAz(t, dir, tokens)
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"} {
		os.Unsetenv(k)
	}
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "AzureCLICredential")
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	if out := c.ok("--tenant", env.TenantID, "--dps", env.DPSName, "groups", "list"); !strings.Contains(out, "mylegacydevices") {
		t.Fatalf("groups list through az:\n%s", out)
	}
	args := string(mustRead(t, argsLog))
	// az is a process per token (a second or so each): one per resource.
	if n := strings.Count(args, "--resource https://management.core.windows.net/ "); n != 1 {
		t.Errorf("az was asked %d times for an ARM token in one command, want once:\n%s", n, args)
	}
	for _, want := range []string{
		"account get-access-token -o json --resource https://management.core.windows.net/ --tenant " + env.TenantID,
		"account get-access-token -o json --resource https://azure-devices-provisioning.net --tenant " + env.TenantID,
	} {
		if !strings.Contains(args, want+"\n") {
			t.Errorf("az was not run as %q; it was run as:\n%s", want, args)
		}
	}
}

// writeFakeAz writes to dir an az that prints what `az account
// get-access-token --output json` prints (accessToken, expiresOn,
// expires_on, subscription, tenant, tokenType), with the token for the
// --resource it is given, and logs its arguments.
func writeFakeAz(t *testing.T, dir string, tokens map[string]string) (argsLog string) {
	t.Helper()
	argsLog = filepath.Join(dir, "az-args.log")
	var cases strings.Builder
	exp := time.Now().Add(time.Hour)
	for resource, tok := range tokens {
		out, _ := json.Marshal(map[string]any{"accessToken": tok, "expiresOn": exp.Format("2006-01-02 15:04:05.000000"),
			"expires_on": exp.Unix(), "subscription": "00000000-0000-0000-0000-000000000000", "tenant": "t", "tokenType": "Bearer"})
		fmt.Fprintf(&cases, "  %s) echo '%s' ;;\n", resource, out)
	}
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %q\nresource=\"\"\nwhile [ $# -gt 0 ]; do [ \"$1\" = \"--resource\" ] && resource=\"$2\"; shift; done\n"+
		"case \"$resource\" in\n%s  *) echo \"ERROR: no token for $resource\" >&2; exit 1 ;;\nesac\n", argsLog, cases.String())
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return argsLog
}

// --auth device-code signs in with a device code, its prompt on stderr (the
// emulator approves it once polled). Without it, and with no terminal to
// show a prompt on, no identity is a quick error saying what to do.
func TestDeviceCodeSignInPromptsOnStderr(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{}, false)
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"} {
		os.Unsetenv(k)
	}
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "AzureCLICredential") // never a managed-identity probe from a test
	t.Setenv("PATH", t.TempDir())                             // and no az
	code, out, errOut := c.run("--auth", "device-code", "--tenant", env.TenantID, "targets", "list")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "enter the code") || !strings.Contains(out, env.DPSName) {
		t.Errorf("stderr lacks the device-code prompt, or stdout the DPS:\nstdout: %s\nstderr: %s", out, errOut)
	}
	start := time.Now()
	errOut = c.fails(1, []string{"--tenant", env.TenantID, "targets", "list"}, "AzureCLICredential", "az login", "--auth device-code")
	if strings.Contains(errOut, "enter the code") || time.Since(start) > 20*time.Second {
		t.Errorf("with no terminal, sign-in still offered a device code (%s):\n%s", time.Since(start), errOut)
	}
}

// --target emulator --auth login starts the embedded emulator with Entra on
// and signs in to it as its Contributor: bearer tokens on DPS and hubs.
func TestEmbeddedEmulatorSignedIn(t *testing.T) {
	c := newCLI(t)
	if out := c.ok("--target", "emulator", "--auth", "login", "groups", "list"); !strings.Contains(out, "mylegacydevices") {
		t.Fatalf("groups list:\n%s", out)
	}
	if out := c.ok("--target", "emulator", "--auth", "login", "hub", "device", "show", "fleet-sensor-001"); !strings.Contains(out, "fleet-sensor-001") {
		t.Errorf("hub device show:\n%s", out)
	}
	_, _, errOut := c.run("--target", "emulator", "--auth", "login", "register", "--registration-id", "emb-1", "--group", "mylegacydevices")
	if !strings.Contains(errOut, "signed in with Entra ID") {
		t.Errorf("register does not say it is signed in:\n%s", errOut)
	}
	env, err := os.ReadFile(filepath.Join(c.stateDir, "emulator", emulator.EnvFile))
	if err != nil || !strings.Contains(string(env), "AZURE_TENANT_ID=") {
		t.Errorf("the embedded emulator's env has no Entra lines (%v)", err)
	}
	a := &app{stateDir: c.stateDir, azure: azureFlags{target: targetEmulator, auth: authLogin}}
	tg, err := a.openTarget(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if !tg.client.SignedIn() || tg.auth != authLogin || len(tg.linkedHubs) != 2 {
		t.Errorf("target signed in %v, auth %q, linked hubs %q", tg.client.SignedIn(), tg.auth, tg.linkedHubs)
	}
}

// After az login, a managed identity endpoint that answers with an error (an
// HTTP proxy answering for IMDS, a half-configured App Service identity)
// stops the default chain before az: the message says how to skip it.
func TestFailedManagedIdentityPointsPastItToAz(t *testing.T) {
	c, env := entraEmulator(t, emulator.Options{}, false)
	tr, err := dps.NewTransport(mustRead(t, env.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	mint, err := azidentity.NewClientSecretCredential(env.TenantID, env.ClientID, env.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: signin.Private(env.AuthorityHost, env.ResourceManagerEndpoint), Transport: tr}, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := mint.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFakeAz(t, dir, map[string]string{"https://management.core.windows.net/": tk.Token})
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"} {
		os.Unsetenv(k)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "denied destination", http.StatusForbidden)
	}))
	defer refusing.Close()
	t.Setenv("IDENTITY_ENDPOINT", refusing.URL)
	t.Setenv("IDENTITY_HEADER", "x")
	c.fails(1, []string{"targets", "list"}, "ManagedIdentityCredential", "AZURE_TOKEN_CREDENTIALS=dev")
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "dev")
	if out := c.ok("targets", "list"); !strings.Contains(out, env.DPSName) {
		t.Errorf("with AZURE_TOKEN_CREDENTIALS=dev, az's sign-in:\n%s", out)
	}
}
