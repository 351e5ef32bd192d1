package main

import "testing"

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
