package main

import (
	"path/filepath"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/discovery"
)

// TestRememberedTenantIsNamedAsRemembered checks that a message about the
// tenant says it came from target.json, not from a --tenant the operator
// never typed this time.
func TestRememberedTenantIsNamedAsRemembered(t *testing.T) {
	c := newCLI(t)
	choice := discovery.ChoiceOf(discovery.DPS{Name: "contoso-dps", ResourceGroup: "iot-rg", SubscriptionID: "sub-1"}, "remembered.onmicrosoft.com", authLogin)
	if err := discovery.SaveChoice(c.stateDir, choice); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZURE_TENANT_ID", "env.onmicrosoft.com")
	t.Setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001")
	errOut := c.fails(2, []string{"--target", "azure", "groups", "list"},
		// fang wraps inside "--tenant": check around it.
		"the tenant remembered in "+filepath.Join(c.stateDir, discovery.ChoiceFile)+" (from an earlier", "is remembered.onmicrosoft.com but $AZURE_TENANT_ID")
	if mentions(errOut, "--tenant is") {
		t.Errorf("the message calls the remembered tenant --tenant:\n%s", errOut)
	}
	// Typed, it is --tenant.
	c.fails(2, []string{"--target", "azure", "--tenant", "typed.onmicrosoft.com", "groups", "list"}, "--tenant is typed.onmicrosoft.com")
}
