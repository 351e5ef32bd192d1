package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// provisioned starts an emulator with one hub and registers n devices
// through a group; it returns the hub's registry client and the device keys.
func provisioned(t testing.TB, n int) (*emulator.Emulator, *hub.RegistryClient, map[string]keys.Key, azcore.ClientOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	em, err := emulator.Start(ctx, emulator.Options{DataDir: t.TempDir(), Seed: "none", HubAddrs: []string{"127.0.0.1:0"}, MQTTAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	tr, err := dps.NewTransport(em.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	tr.Timeout = 30 * time.Second // a hung server fails the test, not the package timeout
	opts := azcore.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}}
	env := em.Env()
	svc, err := dps.NewClientFromConnectionString(env.DPSConnectionString, &dps.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	gk := keys.GenerateKey()
	if _, err := svc.CreateOrUpdateEnrollmentGroup(ctx, dps.EnrollmentGroup{EnrollmentGroupID: "g", Attestation: dps.AttestationMechanism{
		Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{PrimaryKey: dps.Secret(gk.Base64())}}}, nil); err != nil {
		t.Fatal(err)
	}
	dc, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: opts, ProvisioningHost: env.DeviceEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	devs := map[string]keys.Key{}
	for i := range n {
		rid := fmt.Sprintf("dev-%02d", i)
		k, _ := keys.DeriveDeviceKey(gk, rid)
		p, err := dc.BeginRegister(ctx, rid, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 10 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		devs[rid] = k
	}
	reg, err := hub.NewRegistryClientFromConnectionString(env.HubConnectionStrings[0], &hub.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	return em, reg, devs, opts
}

func TestTelemetry(t *testing.T) {
	em, reg, devs, opts := provisioned(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dc, err := hub.NewDeviceClient(reg.Host(), "dev-00", devs["dev-00"], &hub.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		err := dc.SendEvent(ctx, []byte(fmt.Sprintf(`{"n":%d}`, i)), &hub.SendEventOptions{
			Properties: map[string]string{"source": "test"}, MessageID: fmt.Sprint(i), ContentType: "application/json"})
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := em.HubDevice(ctx, reg.Host(), "dev-00")
	if err != nil || d.MessageCount != 3 || d.LastActivity.IsZero() {
		t.Fatalf("hub device = %+v, %v; want 3 messages counted", d, err)
	}

	wrong, _ := hub.NewDeviceClient(reg.Host(), "dev-00", keys.GenerateKey(), &hub.ClientOptions{ClientOptions: opts})
	err = wrong.SendEvent(ctx, []byte("x"), nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized || re.ErrorCode != "IotHubUnauthorizedAccess" {
		t.Fatalf("wrong key: %v, want 401 IotHubUnauthorizedAccess", err)
	}
}

func TestRegistry(t *testing.T) {
	_, reg, devs, _ := provisioned(t, 5)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	d, err := reg.GetDevice(ctx, "dev-03")
	if err != nil {
		t.Fatal(err)
	}
	if d.DeviceID != "dev-03" || d.Authentication == nil || d.Authentication.SymmetricKey.PrimaryKey.Reveal() != devs["dev-03"].Base64() {
		t.Fatalf("device = %+v; want its derived key as the hub key", d)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", d, d), devs["dev-03"].Base64()) {
		t.Error("printing a device shows its key")
	}
	tw, err := reg.GetTwin(ctx, "dev-03")
	if err != nil {
		t.Fatal(err)
	}
	if tw.DeviceID != "dev-03" || tw.Version != 1 || tw.DeviceETag != d.ETag || tw.Properties == nil {
		t.Fatalf("twin = %+v; want dev-03's, version 1, its device ETag, properties", tw)
	}

	seen := map[string]int{}
	pages := 0
	pager := reg.NewDevicePager(&hub.PagerOptions{PageSize: 2})
	for pager.More() {
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tw := range p.Items {
			seen[tw.DeviceID]++
		}
	}
	if pages != 3 || len(seen) != 5 {
		t.Fatalf("%d pages, devices %v; want 3 pages of 5 devices each seen once", pages, seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s seen %d times", id, n)
		}
	}

	if err := reg.DeleteDevice(ctx, "dev-03", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.GetDevice(ctx, "dev-03"); !hub.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want not found", err)
	}
	if _, err := reg.GetTwin(ctx, "dev-03"); !hub.IsNotFound(err) {
		t.Fatalf("get twin after delete: %v, want not found", err)
	}
	if err := reg.DeleteDevice(ctx, "dev-03", nil); !hub.IsNotFound(err) {
		t.Fatalf("second delete: %v, want not found", err)
	}
	stale := azcore.ETag("stale")
	if err := reg.DeleteDevice(ctx, "dev-04", &hub.DeleteOptions{IfMatch: &stale}); err == nil {
		t.Fatal("delete with a stale ETag succeeded")
	}
}

func TestRegistryWrongPolicyKey(t *testing.T) {
	_, reg, _, opts := provisioned(t, 0)
	cs := keys.ConnectionString{HostName: reg.Host(), SharedAccessKeyName: "iothubowner", SharedAccessKey: keys.GenerateKey()}
	bad, err := hub.NewRegistryClientFromConnectionString(cs.Encode(), &hub.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = bad.GetDevice(ctx, "x")
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v, want 401", err)
	}
	if _, err = bad.GetTwin(ctx, "x"); !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
		t.Fatalf("get twin: err = %v, want 401", err)
	}
}

// BenchmarkSendEvent is device-to-cloud telemetry over HTTPS to the
// emulator's hub: 50 devices sending concurrently, each message counted in
// SQLite (group commit) before the 204.
func BenchmarkSendEvent(b *testing.B) {
	_, reg, devs, opts := provisioned(b, 50)
	clients := make([]*hub.DeviceClient, 0, len(devs))
	for id, k := range devs {
		c, err := hub.NewDeviceClient(reg.Host(), id, k, &hub.ClientOptions{ClientOptions: opts})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
	}
	body := []byte(`{"temperature":21.5}`)
	var next atomic.Int64
	b.SetParallelism(25) // 2 cores × 25 = 50 senders
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := clients[int(next.Add(1)-1)%len(clients)]
		for pb.Next() {
			if err := c.SendEvent(context.Background(), body, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "messages/s")
}
