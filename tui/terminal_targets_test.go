package tui

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// TestTerminalTargetPickerUnderTmux runs the real binary with --target
// azure against a standalone-style emulator with --entra, signed in as its
// Contributor through the environment credential (azidentity's default
// chain): the picker is the first screen, a pick connects with Entra ID and
// lists the groups, and the next start reopens the pick without asking.
func TestTerminalTargetPickerUnderTmux(t *testing.T) {
	ensureTmux(t)
	dir := t.TempDir()
	bin := buildConsole(t, dir)
	emu, err := emulator.Start(context.Background(), emulator.Options{DataDir: filepath.Join(dir, "emulator"), HTTPSAddr: "127.0.0.1:0",
		Seed: "demo", Entra: true, MQTTAddr: emulator.MQTTOff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	env := emu.Env()
	// The tmux server each console starts inherits these.
	for k, v := range map[string]string{
		"AZURE_AUTHORITY_HOST": env.AuthorityHost, "AZURE_RESOURCE_MANAGER_ENDPOINT": env.ResourceManagerEndpoint,
		"AZURE_TENANT_ID": env.TenantID, "AZURE_CLIENT_ID": env.ClientID, "AZURE_CLIENT_SECRET": env.ClientSecret,
		"DPS_CA_FILE": env.CAFile, "AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential",
	} {
		t.Setenv(k, v)
	}
	state := filepath.Join(dir, "state")

	m := startConsole(t, bin, state, "picker", "--target", "azure")
	m.waitFor("the picker is the first screen", "Targets in Azure", env.DPSName, env.DPSResourceGroup, env.IDScope, "enter connect with Entra ID")
	m.send("Enter")
	m.waitFor("the pick lists the groups, signed in", "Enrollment groups", "hashed-fleet", "mylegacydevices", "Entra ID as "+env.ClientID)
	m.quit()
	if _, err := os.Stat(filepath.Join(state, discovery.ChoiceFile)); err != nil {
		t.Fatalf("the pick is not remembered: %v", err)
	}

	m = startConsole(t, bin, state, "reopen", "--target", "azure")
	m.waitFor("the next start reopens the pick", "Enrollment groups", "hashed-fleet", "Entra ID as "+env.ClientID)
	m.quit()
}
