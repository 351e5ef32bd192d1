package emulator

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	dpsarm "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/deviceprovisioningservices/armdeviceprovisioningservices"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"

	"github.com/dpsconsole/dpsconsole/keys"
)

func armOptions(t testing.TB, e *Emulator) *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: entraClientOptions(t, e)}
}

func dpsARMClient(t testing.TB, e *Emulator, cred azcore.TokenCredential) *dpsarm.IotDpsResourceClient {
	t.Helper()
	c, err := dpsarm.NewIotDpsResourceClient(e.Env().SubscriptionID, cred, armOptions(t, e))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func armContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestARMDescribesTheEmulatorToTheGoSDK(t *testing.T) {
	e, _ := startEntra(t, Options{})
	env := e.Env()
	ctx := armContext(t)
	cred := secretCredential(t, e, env.ClientID, env.ClientSecret)

	subs, err := armsubscriptions.NewClient(cred, armOptions(t, e))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for pager := subs.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("subscriptions: %v", err)
		}
		for _, s := range page.Value {
			ids = append(ids, *s.SubscriptionID)
			if *s.TenantID != env.TenantID || *s.State != armsubscriptions.SubscriptionStateEnabled {
				t.Errorf("subscription = %+v", s)
			}
		}
	}
	if len(ids) != 1 || ids[0] != env.SubscriptionID {
		t.Fatalf("subscriptions = %v, want [%s]", ids, env.SubscriptionID)
	}
	tenants, err := armsubscriptions.NewTenantsClient(cred, armOptions(t, e))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := tenants.NewListPager(nil).NextPage(ctx)
	if err != nil || len(tp.Value) != 1 || *tp.Value[0].TenantID != env.TenantID {
		t.Fatalf("tenants = %+v, %v", tp.Value, err)
	}

	dps := dpsARMClient(t, e, cred)
	var listed []*dpsarm.ProvisioningServiceDescription
	for pager := dps.NewListBySubscriptionPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("DPS by subscription: %v", err)
		}
		listed = append(listed, page.Value...)
	}
	rgPage, err := dps.NewListByResourceGroupPager(env.DPSResourceGroup, nil).NextPage(ctx)
	if err != nil {
		t.Fatalf("DPS by resource group: %v", err)
	}
	got, err := dps.Get(ctx, env.DPSName, env.DPSResourceGroup, nil)
	if err != nil {
		t.Fatalf("DPS get: %v", err)
	}
	if len(listed) != 1 || len(rgPage.Value) != 1 || *listed[0].ID != *got.ID || *rgPage.Value[0].Name != env.DPSName {
		t.Fatalf("listed %d by subscription and %d by group, want the one DPS %s", len(listed), len(rgPage.Value), *got.ID)
	}
	pr := got.Properties
	if *got.Name != env.DPSName || *pr.IDScope != env.IDScope || *pr.ServiceOperationsHostName != env.DeviceEndpoint ||
		*pr.DeviceProvisioningHostName != env.DeviceEndpoint || *pr.State != dpsarm.StateActive || *pr.AllocationPolicy != dpsarm.AllocationPolicyHashed {
		t.Errorf("DPS = name %s scope %s service %s device %s state %s policy %s; env %+v", *got.Name, *pr.IDScope, *pr.ServiceOperationsHostName,
			*pr.DeviceProvisioningHostName, *pr.State, *pr.AllocationPolicy, env)
	}
	if len(pr.IotHubs) != len(env.HubConnectionStrings) {
		t.Fatalf("%d linked hubs, want %d", len(pr.IotHubs), len(env.HubConnectionStrings))
	}
	for i, h := range pr.IotHubs {
		cs, _ := keys.ParseServiceConnectionString(env.HubConnectionStrings[i])
		if *h.Name != cs.HostName || *h.AllocationWeight != 1 || !*h.ApplyAllocationPolicy || *h.Location != armLocation {
			t.Errorf("hub %d = %s weight %d apply %v", i, *h.Name, *h.AllocationWeight, *h.ApplyAllocationPolicy)
		}
		if strings.Contains(*h.ConnectionString, cs.SharedAccessKey.Base64()) || !strings.Contains(*h.ConnectionString, "SharedAccessKeyName="+hubPolicy) {
			t.Errorf("hub %d connection string %q: want the policy named and the key masked", i, *h.ConnectionString)
		}
	}

	// listkeys gives the service policy, whose key makes the env's connection string.
	kp, err := dps.NewListKeysPager(env.DPSName, env.DPSResourceGroup, nil).NextPage(ctx)
	if err != nil || len(kp.Value) != 1 {
		t.Fatalf("listkeys = %+v, %v", kp.Value, err)
	}
	svc, _ := keys.ParseServiceConnectionString(env.DPSConnectionString)
	if *kp.Value[0].KeyName != servicePolicy || *kp.Value[0].PrimaryKey != svc.SharedAccessKey.Base64() {
		t.Errorf("listkeys = %s, want the %s key", *kp.Value[0].KeyName, servicePolicy)
	}
	one, err := dps.ListKeysForKeyName(ctx, env.DPSName, servicePolicy, env.DPSResourceGroup, nil)
	if err != nil || *one.PrimaryKey != svc.SharedAccessKey.Base64() {
		t.Errorf("ListKeysForKeyName: %v", err)
	}
}

func TestARMReaderMayReadButNotListKeys(t *testing.T) {
	e, _ := startEntra(t, Options{})
	env := e.Env()
	ctx := armContext(t)
	dps := dpsARMClient(t, e, secretCredential(t, e, env.ReaderClientID, env.ReaderClientSecret))
	if _, err := dps.Get(ctx, env.DPSName, env.DPSResourceGroup, nil); err != nil {
		t.Fatalf("Reader Get: %v", err)
	}
	_, err := dps.NewListKeysPager(env.DPSName, env.DPSResourceGroup, nil).NextPage(ctx)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || re.ErrorCode != "AuthorizationFailed" {
		t.Fatalf("Reader listkeys: err = %v, want 403 AuthorizationFailed", err)
	}
	want := "does not have authorization to perform action '" + actionDPSListKeys + "' over scope '" + e.dpsResourceID() + "'"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), e.entra.reader.objectID) {
		t.Errorf("error %s\nwant it to name the reader, the action and the scope", err)
	}
	if _, err := dps.ListKeysForKeyName(ctx, env.DPSName, servicePolicy, env.DPSResourceGroup, nil); !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Errorf("Reader ListKeysForKeyName: %v, want 403", err)
	}
}

func TestARMNotFoundAndBadTokensInARMShape(t *testing.T) {
	e, _ := startEntra(t, Options{})
	env := e.Env()
	ctx := armContext(t)
	cred := secretCredential(t, e, env.ClientID, env.ClientSecret)
	dps := dpsARMClient(t, e, cred)
	var re *azcore.ResponseError
	if _, err := dps.Get(ctx, "other", env.DPSResourceGroup, nil); !errors.As(err, &re) || re.StatusCode != 404 || re.ErrorCode != "ResourceNotFound" {
		t.Errorf("other DPS: %v, want 404 ResourceNotFound", err)
	}
	if _, err := dps.Get(ctx, env.DPSName, "other-rg", nil); !errors.As(err, &re) || re.StatusCode != 404 || re.ErrorCode != "ResourceGroupNotFound" {
		t.Errorf("other group: %v, want 404 ResourceGroupNotFound", err)
	}
	other, _ := dpsarm.NewIotDpsResourceClient(newGUID(), cred, armOptions(t, e))
	if _, err := other.Get(ctx, env.DPSName, env.DPSResourceGroup, nil); !errors.As(err, &re) || re.StatusCode != 404 || re.ErrorCode != "SubscriptionNotFound" {
		t.Errorf("other subscription: %v, want 404 SubscriptionNotFound", err)
	}

	// Raw requests: a DPS-audience token, an expired one, none, no api-version.
	dpsTok, err := getToken(t, cred, audienceDPS+"/.default")
	if err != nil {
		t.Fatal(err)
	}
	armTok, err := getToken(t, cred, audienceARM+"/.default")
	if err != nil {
		t.Fatal(err)
	}
	url := env.ResourceManagerEndpoint + "subscriptions/" + env.SubscriptionID + "/resourceGroups/" + env.DPSResourceGroup + "/providers/Microsoft.Devices/provisioningServices/" + env.DPSName
	call := func(auth, query string) (int, string) {
		t.Helper()
		return rawCall(t, e, http.MethodGet, url+query, auth)
	}
	if st, body := call("Bearer "+dpsTok.Token, "?api-version=2022-02-05"); st != 401 || !strings.Contains(body, "InvalidAuthenticationTokenAudience") {
		t.Errorf("DPS-audience token: %d %s", st, body)
	}
	if st, body := call("", "?api-version=2022-02-05"); st != 401 || !strings.Contains(body, `"AuthenticationFailed"`) {
		t.Errorf("no token: %d %s", st, body)
	}
	if st, body := call("Bearer "+armTok.Token, ""); st != 400 || !strings.Contains(body, "MissingApiVersionParameter") {
		t.Errorf("no api-version: %d %s", st, body)
	}
	if st, body := call("Bearer "+armTok.Token, "?api-version=1999-01-01"); st != 400 || !strings.Contains(body, "InvalidApiVersionParameter") {
		t.Errorf("bad api-version: %d %s", st, body)
	}
	expired := badTokens(t, e, audienceARM, audienceDPS)["expired"]
	if st, body := call("Bearer "+expired, "?api-version=2022-02-05"); st != 401 || !strings.Contains(body, "ExpiredAuthenticationToken") || strings.Contains(body, expired) {
		t.Errorf("expired token: %d %s", st, body)
	}
}

func TestARMTokensExpireAndAzidentityGetsNewOnes(t *testing.T) {
	e, _ := startEntra(t, Options{TokenLifetime: 2 * time.Second})
	env := e.Env()
	ctx := armContext(t)
	cred := secretCredential(t, e, env.ClientID, env.ClientSecret)
	first, err := getToken(t, cred, audienceARM+"/.default")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(first.ExpiresOn) + 1100*time.Millisecond)
	url := env.ResourceManagerEndpoint + "subscriptions?api-version=2022-12-01"
	if st, body := rawCall(t, e, http.MethodGet, url, "Bearer "+first.Token); st != 401 || !strings.Contains(body, "ExpiredAuthenticationToken") {
		t.Fatalf("the first token, expired: %d %s", st, body)
	}
	if _, err := dpsARMClient(t, e, cred).Get(ctx, env.DPSName, env.DPSResourceGroup, nil); err != nil {
		t.Errorf("Get once the first token has expired: %v", err)
	}
}

// rawCall sends one request to the emulator and returns status and body.
func rawCall(t testing.TB, e *Emulator, method, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := entraClientOptions(t, e).Transport.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}
