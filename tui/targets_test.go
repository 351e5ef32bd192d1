package tui

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/signin"
	"github.com/dpsconsole/dpsconsole/keys"
)

// entraFixture is the emulator with its Entra ID authority and ARM surface.
type entraFixture struct {
	env      emulator.Env
	tr       *http.Client
	cloud    cloud.Configuration
	stateDir string
}

func startEntra(t *testing.T, opts emulator.Options) *entraFixture {
	t.Helper()
	opts.DataDir, opts.Entra, opts.Seed, opts.HTTPSAddr = t.TempDir(), true, "demo", "127.0.0.1:0"
	opts.MQTTAddr = emulator.MQTTOff
	emu, err := emulator.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := dps.NewTransport(emu.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.CloseIdleConnections(); emu.Close() })
	env := emu.Env()
	return &entraFixture{env: env, tr: tr, cloud: signin.Private(env.AuthorityHost, env.ResourceManagerEndpoint),
		stateDir: t.TempDir()}
}

// secretCredential signs in as one of the emulator's principals.
func (f *entraFixture) secretCredential(t *testing.T, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(f.env.TenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: f.cloud, Transport: f.tr}, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// deviceCodeCredential signs in with a device code, its prompt shown by
// the console (DeviceCode), as signin.NewCredential's fallback does.
func (f *entraFixture) deviceCodeCredential(t *testing.T) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: f.cloud, Transport: f.tr}, DisableInstanceDiscovery: true,
		TenantID: f.env.TenantID, UserPrompt: DeviceCode})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// azure is the picker's Azure for cred. Connect stands in for the CLI's
// (cmd/dpsconsole connectDPS, tested there and under tmux): a DPS client
// on bearer tokens, or on the key ListKeys reads.
func (f *entraFixture) azure(t *testing.T, cred azcore.TokenCredential) *Azure {
	t.Helper()
	disc, err := discovery.New(cred, discovery.Options{Cloud: f.cloud, Transport: f.tr})
	if err != nil {
		t.Fatal(err)
	}
	return &Azure{
		StateDir: f.stateDir,
		List:     func(ctx context.Context) ([]discovery.DPS, error) { return disc.ListDPS(ctx, "") },
		Find:     disc.Find,
		Connect: func(ctx context.Context, d discovery.DPS, auth AuthMode) (*Target, error) {
			opts := &dps.ClientOptions{ResourceID: d.ResourceID}
			opts.Transport = f.tr
			t := &Target{Name: "DPS " + d.Name, IDScope: d.IDScope, DeviceEndpoint: d.DeviceHost, HTTPClient: f.tr, Auth: auth, Credential: cred}
			for _, h := range d.Hubs {
				t.LinkedHubs = append(t.LinkedHubs, h.Host)
			}
			var err error
			if auth == AuthSASFromARM {
				cs, lerr := disc.ServiceConnectionString(ctx, d, "")
				if lerr != nil {
					return nil, lerr
				}
				t.Service, err = dps.NewClientFromConnectionString(cs, opts)
			} else {
				t.Service, err = dps.NewClient(d.ServiceHost, cred, opts)
			}
			return t, err
		},
	}
}

// startPicker runs the console with no target, so on the picker, in a real
// Program at 120×40.
func startPicker(t *testing.T, az *Azure, readOnly bool) *flow {
	t.Helper()
	m := New(context.Background(), Options{Azure: az, ReadOnly: readOnly})
	p := probe{Model: m, mu: &sync.Mutex{}, last: new(string)}
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(120, 40))
	t.Cleanup(func() { tm.Quit() })
	return &flow{t: t, tm: tm, p: p}
}

func hubHosts(t *testing.T, env emulator.Env) []string {
	var out []string
	for _, cs := range env.HubConnectionStrings {
		c, err := keys.ParseServiceConnectionString(cs)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.HostName)
	}
	return out
}

func TestTargetsPickerListsTheEmulatorsDPSAndConnectsWithEntraID(t *testing.T) {
	f := startEntra(t, emulator.Options{})
	f2 := startPicker(t, f.azure(t, f.secretCredential(t, f.env.ClientID, f.env.ClientSecret)), false)
	f2.waitFor("the picker lists the emulator's DPS", "Targets in Azure", f.env.DPSName, f.env.DPSResourceGroup, f.env.IDScope, "1 DPS instance", hubHosts(t, f.env)[0])

	f2.keys("enter")
	f2.waitFor("the pick opens home on it, signed in", "Enrollment groups", "hashed-fleet", "DPS "+f.env.DPSName, "Entra ID as "+f.env.ClientID)
	if s := f2.screen(); strings.Contains(s, "Targets in Azure") {
		t.Errorf("the picker should be gone after the pick:\n%s", s)
	}
	c, ok, err := discovery.LoadChoice(f.stateDir)
	if err != nil || !ok || c.DPS != f.env.DPSName || c.ResourceGroup != f.env.DPSResourceGroup || c.Auth != "login" {
		t.Fatalf("the pick is remembered as %+v (ok %v, %v), want %s in %s signed in", c, ok, err, f.env.DPSName, f.env.DPSResourceGroup)
	}
	b, _ := os.ReadFile(filepath.Join(f.stateDir, discovery.ChoiceFile))
	if strings.Contains(string(b), f.env.ClientSecret) || strings.Contains(string(b), "SharedAccessKey") || strings.Contains(string(b), "eyJ") { // eyJ: a JWT
		t.Fatalf("the remembered target holds a secret: %s", b)
	}

	// :targets again, from home: the list is back, esc returns home.
	f2.keys(":")
	f2.typeText("targets")
	f2.keys("enter")
	f2.waitFor(":targets opens the picker over home", "Enrollment groups › Targets in Azure", f.env.IDScope)
}

func TestTargetsReopensTheRememberedDPSWithoutAPick(t *testing.T) {
	f := startEntra(t, emulator.Options{})
	az := f.azure(t, f.secretCredential(t, f.env.ClientID, f.env.ClientSecret))
	az.Reopen = &discovery.Query{Name: f.env.DPSName, ResourceGroup: f.env.DPSResourceGroup}
	f2 := startPicker(t, az, false)
	f2.waitFor("the remembered DPS opens at once", "Enrollment groups", "hashed-fleet", "Entra ID as "+f.env.ClientID)

	// Reopened once, at start: :targets afterwards is the picker, so
	// another DPS can be chosen (it reopened the same one again).
	f2.keys(":")
	f2.typeText("targets")
	f2.keys("enter")
	f2.waitFor(":targets lists the DPS instances", "Enrollment groups › Targets in Azure", f.env.DPSResourceGroup, "enter connects")
}

func TestTargetsListKeysOfferedAndRefusedForTheReader(t *testing.T) {
	f := startEntra(t, emulator.Options{})
	f2 := startPicker(t, f.azure(t, f.secretCredential(t, f.env.ReaderClientID, f.env.ReaderClientSecret)), false)
	f2.waitFor("the Reader may list", f.env.DPSName, "s use a shared access policy instead")
	f2.keys("s")
	f2.waitFor("ListKeys is refused, naming the role", "no shared access key", "AuthorizationFailed", "needs Contributor", "Targets in Azure")

	// Signed in with Entra ID instead, the Reader reads but may not write:
	// the refusal names the role it lacks.
	f2.keys("enter")
	f2.waitFor("the Reader opens home", "hashed-fleet", "Entra ID as "+f.env.ReaderClientID)
	f2.keys("e")
	f2.waitFor("toggle asks first", "disable it")
	f2.keys("y")
	f2.waitFor("the write is refused with the role named", "403", dps.RoleDataContributor)
}

func TestTargetsListKeysConnectsWithTheSharedAccessKey(t *testing.T) {
	f := startEntra(t, emulator.Options{})
	f2 := startPicker(t, f.azure(t, f.secretCredential(t, f.env.ClientID, f.env.ClientSecret)), true)
	f2.waitFor("listed", f.env.IDScope)
	f2.keys("s")
	f2.waitFor("the key ListKeys read opens home", "hashed-fleet", "SAS (ARM ListKeys) as "+f.env.ClientID, "READ-ONLY")
	// --readonly still holds: the write keys are off.
	f2.keys("n")
	if s := f2.screen(); strings.Contains(s, "New enrollment group") {
		t.Fatalf("n opened a form under --readonly:\n%s", s)
	}
}

func TestTargetsDeviceCodeShownInTheConsoleAndCancelled(t *testing.T) {
	f := startEntra(t, emulator.Options{})
	f2 := startPicker(t, f.azure(t, f.deviceCodeCredential(t)), false)
	f2.waitFor("the device-code prompt is a dialog", "Sign in to Microsoft Entra ID", "To sign in, use a web browser to open", "and enter the code", "y  copy the code")
	var code string
	for _, l := range strings.Split(f2.screen(), "\n") {
		if i := strings.Index(l, "enter the code "); i >= 0 {
			code = strings.Fields(l[i+len("enter the code "):])[0]
		}
	}
	if code == "" {
		t.Fatalf("the prompt names no code:\n%s", f2.screen())
	}
	f2.keys("y")
	f2.waitFor("y copies the code", "code copied to the clipboard")
	f2.keys("esc")
	f2.waitFor("esc cancels the sign-in", "cancelled listing the DPS instances", "r tries again")
	if s := f2.screen(); strings.Contains(s, "Sign in to Microsoft Entra ID") {
		t.Fatalf("the dialog should be gone:\n%s", s)
	}
}

func TestTargetsDeviceCodeSignInCompletes(t *testing.T) {
	f := startEntra(t, emulator.Options{})
	f2 := startPicker(t, f.azure(t, f.deviceCodeCredential(t)), false)
	f2.waitFor("the prompt", "and enter the code")
	// The emulator approves on the second poll (5 s apart): the list follows
	// and the dialog closes.
	f2.waitFor("signed in, the list", f.env.IDScope, "1 DPS instance")
	if s := f2.screen(); strings.Contains(s, "and enter the code") {
		t.Fatalf("the dialog outlived the sign-in:\n%s", s)
	}
}

func TestTargetsStaleLoadDropped(t *testing.T) {
	f := startEntra(t, emulator.Options{})
	c := testCommon(t, 120, 30)
	v := newTargetsView(c, f.azure(t, f.secretCredential(t, f.env.ClientID, f.env.ClientSecret)))
	first := v.load()
	second := v.load() // r again: the first is cancelled and its answer is old
	stale := first().(routed).msg
	if cmd := v.Update(stale); cmd != nil || v.table.Loaded() != 0 || !v.Busy() {
		t.Fatalf("the first load's answer (%T) should be dropped; loaded %d, busy %v", stale, v.table.Loaded(), v.Busy())
	}
	v.Update(second().(routed).msg)
	if v.table.Loaded() != 1 || v.Busy() {
		t.Fatalf("the second load should list the DPS: loaded %d, busy %v, err %q", v.table.Loaded(), v.Busy(), v.err)
	}
}

func TestTargetsHeaderNamesWhoSignedInBeforeTheConsole(t *testing.T) {
	f := startEntra(t, emulator.Options{})
	cred := f.secretCredential(t, f.env.ClientID, f.env.ClientSecret)
	target := &Target{Name: "emulator", Auth: AuthEntraID, Credential: cred}
	m := New(context.Background(), Options{Target: target, Start: "derive"})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	if s := plain(screen(m)); !strings.Contains(s, "Entra ID") || strings.Contains(s, " as ") {
		t.Fatalf("before the identity is read the header says only the mode:\n%s", s)
	}
	m.Update(whoSignedIn(context.Background(), target)())
	if s := plain(screen(m)); !strings.Contains(s, "Entra ID as "+f.env.ClientID) {
		t.Fatalf("the header should name the principal:\n%s", s)
	}
}
