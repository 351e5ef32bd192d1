package main

import (
	"strings"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// Flags that ask for two targets at once, or for Azure in a way that cannot
// work, are refused before anything starts or signs in.
func TestTargetFlagsRefuseContradictions(t *testing.T) {
	c := newCLI(t)
	const cs = "HostName=x.azure-devices-provisioning.net;SharedAccessKeyName=p;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "emulator", "--dps", "d", "groups", "list"}, "--target emulator"},
		{[]string{"--connection-string", cs, "--dps", "d", "groups", "list"}, "--connection-string names its DPS"},
		{[]string{"--connection-string", cs, "--auth", "login", "groups", "list"}, "--auth login"},
		{[]string{"--auth", "sas", "--dps", "d", "groups", "list"}, "sas-from-arm"},
		{[]string{"--auth", "password", "groups", "list"}, "use sas, login, device-code or sas-from-arm"},
		{[]string{"--target", "mars", "groups", "list"}, "use emulator or azure"},
		{[]string{"--resource-group", "rg", "groups", "list"}, "give --dps NAME"},
		{[]string{"--tenant", "t", "groups", "list"}, "give --dps NAME"},
		{[]string{"--target", "azure", "groups", "list"}, "no DPS chosen yet"},
		{[]string{"--dps", "d", "targets", "list"}, "leave out --dps"},
	} {
		c.fails(2, tc.args, tc.want)
	}
}

// TestTargetsListSkipsASubscriptionWithoutTheProvider checks that one
// subscription answering 409 MissingSubscriptionRegistration is skipped
// with a note on stderr saying how to register it, and the others listed.
func TestTargetsListSkipsASubscriptionWithoutTheProvider(t *testing.T) {
	c, env, em := entraEmulatorOf(t, emulator.Options{}, true)
	const unregistered = "00000000-0000-0000-0000-00000000dead"
	em.AddUnregisteredSubscription(unregistered)
	code, out, errOut := c.run("targets", "list")
	if code != 0 || !strings.Contains(out, env.DPSName) || !strings.Contains(out, "1 DPS instance") {
		t.Fatalf("targets list: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	note := "subscription " + unregistered + " has not registered the Microsoft.Devices resource provider; skipped: az provider register --namespace Microsoft.Devices --subscription " + unregistered
	if !strings.Contains(errOut, note) || strings.Contains(out, "Microsoft.Devices") {
		t.Errorf("stderr lacks the note %q (or stdout has it)\nstdout: %s\nstderr: %s", note, out, errOut)
	}
	// The picker's path: --dps finds the DPS past the skipped subscription.
	c.ok("--dps", env.DPSName, "groups", "list")
}
