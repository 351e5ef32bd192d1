package tui

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/signin"
)

// s (ListKeys) is offered on a row only when ListKeys can read a key there:
// an active DPS whose ARM resource is known. Elsewhere s says why not.
func TestTargetsOfferListKeysOnlyWhereItApplies(t *testing.T) {
	c := testCommon(t, 120, 30)
	az := &Azure{List: func(context.Context) ([]discovery.DPS, error) { return nil, nil },
		Connect: func(context.Context, discovery.DPS, AuthMode) (*Target, error) {
			return nil, errors.New("no connecting here")
		}}
	v := newTargetsView(c, az)
	v.table.Append([]discovery.DPS{
		{Name: "live", ResourceGroup: "rg", SubscriptionID: "sub", ResourceID: "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Devices/provisioningServices/live",
			ServiceHost: "live.azure-devices-provisioning.net", State: "Active"},
		{Name: "paused", ResourceGroup: "rg", SubscriptionID: "sub", ResourceID: "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Devices/provisioningServices/paused",
			ServiceHost: "paused.azure-devices-provisioning.net", State: "Suspended"},
		{Name: "loose", ResourceID: "loose", ServiceHost: "loose.azure-devices-provisioning.net"},
	}, false)
	const offer = "s uses a shared access policy"
	for i, want := range []string{"", "DPS paused is Suspended", "DPS loose has no ARM resource group"} {
		if i > 0 {
			v.table.MoveBy(1)
		}
		offered := slices.Contains(v.Hints(), c.Keys.ListKeys)
		if offered != (want == "") || strings.Contains(plain(v.View()), offer) != (want == "") {
			t.Errorf("row %d: ListKeys offered %v in the footer, in the body:\n%s", i, offered, plain(v.View()))
		}
		if want == "" {
			continue
		}
		f := flashOf(t, v.Update(press("s")))
		if !strings.Contains(f.text, want) || f.level != levelWarning || v.doing != "" {
			t.Errorf("row %d: s flashed %q (doing %q), want a warning with %q", i, f.text, v.doing, want)
		}
	}
}

// managedIdentityFailure is azidentity's own error when a managed identity
// endpoint (here an App Service one on loopback) answers with an error.
func managedIdentityFailure(t *testing.T) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_request","error_description":"no identity is assigned to this resource"}`))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("IDENTITY_ENDPOINT", srv.URL)
	t.Setenv("IDENTITY_HEADER", "header")
	cred, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err == nil || !strings.Contains(err.Error(), "ManagedIdentityCredential authentication failed") {
		t.Fatalf("the managed identity should fail: %v", err)
	}
	return err
}

// The picker's sign-in error is the CLI's, with its managed-identity hint.
func TestTargetsSignInErrorHasTheManagedIdentityHint(t *testing.T) {
	failure := managedIdentityFailure(t)
	c := testCommon(t, 120, 30)
	v := newTargetsView(c, &Azure{List: func(context.Context) ([]discovery.DPS, error) { return nil, failure }})
	drain(t, v.Update, v.Init(), 5)
	want := signin.Explain(failure).Error()
	for _, part := range []string{"Sign in with az login", "AZURE_TOKEN_CREDENTIALS=dev", "169.254.169.254 to $NO_PROXY", "no identity is assigned"} {
		if !strings.Contains(want, part) || !strings.Contains(v.err, part) {
			t.Fatalf("the picker's error lacks %q:\n%s", part, v.err)
		}
	}
	// Explained once: the CLI's Connect already words its errors so.
	if again := signin.Explain(signin.Explain(failure)).Error(); again != want {
		t.Fatalf("explaining twice changed the text:\n%s", again)
	}
}
