package cleanup

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
)

// fixture is a real in-process emulator with a real client and hub
// registry clients pointed at it.
type fixture struct {
	emu    *emulator.Emulator
	dps    *dps.Client
	hubs   []Hub
	engine *Engine
	wire   *wireLog
}

func startFixture(t testing.TB, opts emulator.Options) *fixture {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Seed == "" {
		opts.Seed = "none"
	}
	emu, err := emulator.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	t.Cleanup(func() { emu.Close() })
	tr, err := dps.NewTransport(emu.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	w := &wireLog{next: tr}
	co := azcore.ClientOptions{Transport: w}
	client, err := dps.NewClientFromConnectionString(emu.Env().DPSConnectionString, &dps.ClientOptions{ClientOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{emu: emu, dps: client, wire: w}
	for _, cs := range emu.Env().HubConnectionStrings {
		h, err := hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: co})
		if err != nil {
			t.Fatal(err)
		}
		f.hubs = append(f.hubs, h)
	}
	f.engine = &Engine{DPS: client, Hubs: f.hubs, StateDir: t.TempDir()}
	return f
}

// wireLog is the transport under test clients: it passes every request to
// the real one and notes, for DELETEs, when each was sent and what came
// back, so tests can measure throttling as the service answered it.
type wireLog struct {
	next policy.Transporter
	mu   sync.Mutex
	dels []exchange
}

type exchange struct {
	sent, answered time.Time
	path           string
	status         int // 0 for a transport error
	retryAfter     string
}

func (w *wireLog) Do(req *http.Request) (*http.Response, error) {
	sent := time.Now()
	resp, err := w.next.Do(req)
	if req.Method == http.MethodDelete {
		x := exchange{sent: sent, answered: time.Now(), path: req.URL.Path}
		if err == nil {
			x.status, x.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
		}
		w.mu.Lock()
		w.dels = append(w.dels, x)
		w.mu.Unlock()
	}
	return resp, err
}

func (w *wireLog) deletes() []exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]exchange(nil), w.dels...)
}

// createGroup makes a live symmetric-key group.
func (f *fixture) createGroup(t testing.TB, id string) dps.EnrollmentGroup {
	t.Helper()
	g, err := f.dps.CreateOrUpdateEnrollmentGroup(context.Background(), dps.EnrollmentGroup{
		EnrollmentGroupID: id,
		Attestation:       dps.AttestationMechanism{Type: dps.AttestationSymmetricKey},
	}, nil)
	if err != nil {
		t.Fatalf("create group %s: %v", id, err)
	}
	return g
}

// seed adds n records to group (existing or not) straight into the store.
func (f *fixture) seed(t testing.TB, group string, n int) {
	t.Helper()
	if err := f.emu.SeedRegistrations(context.Background(), group, n); err != nil {
		t.Fatalf("seed %d records of %s: %v", n, group, err)
	}
}

// records lists the registration ids DPS holds for group.
func (f *fixture) records(t testing.TB, group string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	pager := f.dps.NewRegistrationStatePager(group, &dps.PagerOptions{PageSize: 1000})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list records of %s: %v", group, err)
		}
		for _, st := range page.Items {
			out[st.RegistrationID] = true
		}
	}
	return out
}

// hubHas reports whether the emulator's hub holds the device.
func (f *fixture) hubHas(t testing.TB, hubHost, deviceID string) bool {
	t.Helper()
	_, err := f.emu.HubDevice(context.Background(), hubHost, deviceID)
	return err == nil
}

// collect drains events into a slice until the channel is closed.
func collect(events chan Event) (wait func() []Event) {
	var got []Event
	done := make(chan struct{})
	go func() {
		for ev := range events {
			got = append(got, ev)
		}
		close(done)
	}()
	return func() []Event { close(events); <-done; return got }
}
