package discovery_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/signin"
	"github.com/dpsconsole/dpsconsole/keys"
)

// recorder keeps every request the ARM client sends (method, path, query,
// whether it carried a bearer token), for checking against the SDK's.
type recorder struct {
	next *http.Client
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.next.Do(req)
}

// armRequests are the recorded requests to the ARM paths (not the authority's).
func (r *recorder) armRequests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*http.Request
	for _, q := range r.reqs {
		if strings.HasPrefix(q.URL.Path, "/subscriptions") {
			out = append(out, q)
		}
	}
	return out
}

type fixture struct {
	em   *emulator.Emulator
	env  emulator.Env
	rec  *recorder
	disc func(clientID, secret string) *discovery.Client
}

func start(t *testing.T) *fixture {
	t.Helper()
	em, err := emulator.Start(context.Background(), emulator.Options{DataDir: t.TempDir(), Entra: true, MQTTAddr: emulator.MQTTOff, Seed: "demo",
		HubAddrs: []string{"127.0.0.1:0", "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	tr, err := dps.NewTransport(em.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	f := &fixture{em: em, env: em.Env(), rec: &recorder{next: tr}}
	cloud := signin.Private(f.env.AuthorityHost, f.env.ResourceManagerEndpoint)
	f.disc = func(clientID, secret string) *discovery.Client {
		cred, err := azidentity.NewClientSecretCredential(f.env.TenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: azcore.ClientOptions{Cloud: cloud, Transport: tr}, DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		c, err := discovery.New(cred, discovery.Options{Cloud: cloud, Transport: f.rec})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return f
}

func TestDiscoveryFindsTheEmulatorsDPS(t *testing.T) {
	f := start(t)
	c := f.disc(f.env.ReaderClientID, f.env.ReaderClientSecret) // listing needs only Reader
	ctx := context.Background()

	subs, err := c.Subscriptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].ID != f.env.SubscriptionID || subs[0].TenantID != f.env.TenantID || subs[0].Name == "" {
		t.Fatalf("subscriptions %+v, want the emulator's %s", subs, f.env.SubscriptionID)
	}
	all, err := c.ListDPS(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("DPS instances %+v, want the emulator's", all)
	}
	d := all[0]
	cs, _ := keys.ParseServiceConnectionString(f.env.DPSConnectionString)
	if d.Name != f.env.DPSName || d.ResourceGroup != f.env.DPSResourceGroup || d.SubscriptionID != f.env.SubscriptionID ||
		d.IDScope != f.env.IDScope || d.ServiceHost != cs.HostName || d.DeviceHost != f.env.DeviceEndpoint || d.Location == "" ||
		!strings.HasSuffix(d.ResourceID, "/provisioningServices/"+f.env.DPSName) {
		t.Errorf("DPS %+v\nwant name %s, group %s, scope %s, service host %s, device host %s", d, f.env.DPSName, f.env.DPSResourceGroup, f.env.IDScope, cs.HostName, f.env.DeviceEndpoint)
	}
	if len(d.Hubs) != len(f.env.HubConnectionStrings) {
		t.Fatalf("hubs %+v, want %d", d.Hubs, len(f.env.HubConnectionStrings))
	}
	for i, h := range d.Hubs {
		hcs, _ := keys.ParseServiceConnectionString(f.env.HubConnectionStrings[i])
		if h.Host != hcs.HostName || h.AllocationWeight == nil || !h.ApplyAllocationPolicy {
			t.Errorf("hub %d: %+v, want %s with a weight, applying allocation", i, h, hcs.HostName)
		}
	}

	// Found by name alone, by name, group and subscription name (Get), and not found.
	if got, err := c.Find(ctx, discovery.Query{Name: strings.ToUpper(f.env.DPSName)}); err != nil || got.ResourceID != d.ResourceID {
		t.Errorf("Find by name: %+v, %v", got, err)
	}
	if got, err := c.Find(ctx, discovery.Query{Name: f.env.DPSName, ResourceGroup: f.env.DPSResourceGroup, Subscription: subs[0].Name}); err != nil || got.IDScope != d.IDScope || len(got.Hubs) != len(d.Hubs) {
		t.Errorf("Find by name, group and subscription name: %+v, %v", got, err)
	}
	// Not found: the error names the instances there are, to pick from.
	candidate := f.env.DPSName + " (resource group " + f.env.DPSResourceGroup + ")"
	if _, err := c.Find(ctx, discovery.Query{Name: "nope"}); err == nil || !strings.Contains(err.Error(), `no DPS named "nope"`) ||
		!strings.Contains(err.Error(), candidate) || strings.Contains(err.Error(), "1 DPS instances") {
		t.Errorf("Find nope: %v, want it to name %s", err, candidate)
	}
	if _, err := c.Find(ctx, discovery.Query{Name: f.env.DPSName, ResourceGroup: "other-rg"}); err == nil || !strings.Contains(err.Error(), candidate) {
		t.Errorf("Find in another group, by listing: %v, want it to name %s", err, candidate)
	}
	if _, err := c.Find(ctx, discovery.Query{Name: f.env.DPSName, ResourceGroup: "other-rg", Subscription: f.env.SubscriptionID}); err == nil || !strings.Contains(err.Error(), "other-rg") {
		t.Errorf("Find in another group: %v", err)
	}
	if _, err := c.Find(ctx, discovery.Query{Name: f.env.DPSName, Subscription: "No Such Subscription"}); err == nil || !strings.Contains(err.Error(), "No Such Subscription") {
		t.Errorf("Find in an unknown subscription: %v", err)
	}

	// What the SDK modules sent: bearer tokens, their own api-versions.
	reqs := f.rec.armRequests()
	if len(reqs) == 0 {
		t.Fatal("no ARM request recorded")
	}
	for _, r := range reqs {
		want := "2022-02-05" // armdeviceprovisioningservices v1.2.0
		if !strings.Contains(r.URL.Path, "/providers/Microsoft.Devices/") {
			want = "2022-12-01" // armsubscriptions v1.3.0
		}
		if got := r.URL.Query().Get("api-version"); got != want {
			t.Errorf("%s %s: api-version %q, want %q", r.Method, r.URL.Path, got, want)
		}
		if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "Bearer ") {
			t.Errorf("%s %s: Authorization %.10q…, want a bearer token", r.Method, r.URL.Path, auth)
		} else if id, err := signin.IdentityOf(strings.TrimPrefix(auth, "Bearer ")); err != nil || id.AppID != f.env.ReaderClientID {
			t.Errorf("%s %s: token of %+v (%v)", r.Method, r.URL.Path, id, err)
		}
	}
}

func TestListKeysOnlyWithARoleThatMayListThem(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	d, err := f.disc(f.env.ClientID, f.env.ClientSecret).Find(ctx, discovery.Query{Name: f.env.DPSName})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := f.disc(f.env.ClientID, f.env.ClientSecret).ServiceConnectionString(ctx, d, "")
	if err != nil {
		t.Fatal(err)
	}
	if cs != f.env.DPSConnectionString {
		t.Errorf("ListKeys gave another connection string than the emulator's own")
	}
	_, err = f.disc(f.env.ReaderClientID, f.env.ReaderClientSecret).ServiceConnectionString(ctx, d, "")
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "AuthorizationFailed") || !strings.Contains(err.Error(), "listkeys") {
		t.Errorf("Reader's ListKeys: %v, want ARM's 403 AuthorizationFailed naming listkeys", err)
	}
	if _, err := f.disc(f.env.ClientID, f.env.ClientSecret).ServiceConnectionString(ctx, d, "nosuchpolicy"); err == nil || !strings.Contains(err.Error(), "provisioningserviceowner") {
		t.Errorf("an unknown policy: %v, want the policies it has", err)
	}
}

// TestListDPSSkipsASubscriptionWithoutTheProvider checks that a
// subscription answering 409 MissingSubscriptionRegistration is skipped with
// a note saying how to register the provider, and the others still listed.
func TestListDPSSkipsASubscriptionWithoutTheProvider(t *testing.T) {
	f := start(t)
	const unregistered = "00000000-0000-0000-0000-00000000dead"
	f.em.AddUnregisteredSubscription(unregistered)
	cloud := signin.Private(f.env.AuthorityHost, f.env.ResourceManagerEndpoint)
	cred, err := azidentity.NewClientSecretCredential(f.env.TenantID, f.env.ReaderClientID, f.env.ReaderClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud, Transport: f.rec}, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	const remembered = "the tenant remembered in target.json (from an earlier --tenant)"
	c, err := discovery.New(cred, discovery.Options{Cloud: cloud, Transport: f.rec, Note: func(s string) { notes = append(notes, s) }, TenantSource: remembered})
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.ListDPS(context.Background(), "")
	if err != nil {
		t.Fatalf("ListDPS: %v", err)
	}
	if len(all) != 1 || all[0].Name != f.env.DPSName {
		t.Errorf("DPS instances %+v, want the emulator's %s", all, f.env.DPSName)
	}
	want := "subscription " + unregistered + " has not registered the Microsoft.Devices resource provider; skipped: az provider register --namespace Microsoft.Devices --subscription " + unregistered
	if len(notes) != 1 || notes[0] != want {
		t.Errorf("notes %q, want [%q]", notes, want)
	}
	// Named alone, it is skipped the same way: no DPS, the note, no error.
	notes = nil
	if all, err := c.ListDPS(context.Background(), unregistered); err != nil || len(all) != 0 || len(notes) != 1 {
		t.Errorf("ListDPS(%s): %+v, %v, notes %q", unregistered, all, err, notes)
	}
	// Nothing found there: the advice names the tenant as it was given.
	if _, err := c.Find(context.Background(), discovery.Query{Name: f.env.DPSName, Subscription: unregistered}); err == nil ||
		!strings.Contains(err.Error(), "check "+remembered) || strings.Contains(err.Error(), "check --tenant") {
		t.Errorf("Find in %s: %v, want it to say check %s", unregistered, err, remembered)
	}
}
