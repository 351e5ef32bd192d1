package device_test

import (
	"crypto/tls"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/keys"
)

// registry is the service client of the hub with host name hubHost.
func (f *fixture) registry(t *testing.T, hubHost string) *hub.RegistryClient {
	t.Helper()
	for _, cs := range f.em.Env().HubConnectionStrings {
		reg, err := hub.NewRegistryClientFromConnectionString(cs, &hub.ClientOptions{ClientOptions: f.options})
		if err != nil {
			t.Fatal(err)
		}
		if reg.Host() == hubHost {
			return reg
		}
	}
	t.Fatalf("no hub %q", hubHost)
	return nil
}

// TestReprovisioningKeepsOrResetsServiceWrites: what the service wrote to a
// twin after the first assignment survives a migrating re-registration
// (same hub or another) and is replaced by the initial twin on a reset.
func TestReprovisioningKeepsOrResetsServiceWrites(t *testing.T) {
	f := start(t, 0)
	ctx := t.Context()
	for _, c := range []struct {
		name          string
		policy        *dps.ReprovisionPolicy
		move          bool
		tags, desired string
	}{
		{"migrate-move", nil, true, `{"config":"v1","owner":"ops"}`, `{"rate":9}`},
		{"migrate-stay", nil, false, `{"config":"v1","owner":"ops"}`, `{"rate":9}`},
		{"reset-move", &dps.ReprovisionPolicy{UpdateHubAssignment: true}, true, `{"config":"v1"}`, `{"rate":1}`},
		{"reset-stay", &dps.ReprovisionPolicy{UpdateHubAssignment: true}, false, `{"config":"v1"}`, `{"rate":1}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			rid := "dev-" + c.name
			ie, key := f.enrollment(t, dps.IndividualEnrollment{RegistrationID: rid, AllocationPolicy: dps.AllocationStatic, IoTHubs: f.hubs[:1],
				ReprovisionPolicy: c.policy, InitialTwin: initialTwin(dps.TwinCollection{"config": "v1"}, dps.TwinCollection{"rate": 1})})
			if _, _, err := f.register(t, rid, key, ""); err != nil {
				t.Fatal(err)
			}
			up, err := f.registry(t, f.hubs[0]).UpdateTwin(ctx, rid, hub.TwinPatch{Tags: dps.TwinCollection{"owner": "ops"},
				Properties: &hub.TwinPatchProperties{Desired: dps.TwinCollection{"rate": 9}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantTwin(t, up, `{"config":"v1","owner":"ops"}`, `{"rate":9}`)
			if c.move {
				ie.IoTHubs = f.hubs[1:]
				if _, err := f.svc.CreateOrUpdateEnrollment(ctx, ie, nil); err != nil {
					t.Fatal(err)
				}
			}
			st, _, err := f.register(t, rid, key, "")
			if err != nil {
				t.Fatal(err)
			}
			tw := f.twin(t, st.AssignedHub, rid)
			wantTwin(t, tw, c.tags, c.desired)
			if c.name == "reset-stay" && (tw.Version != 3 || tw.Properties.Desired["$version"] != 3.0) {
				// first assignment 1, the patch 2, the reset 3
				t.Errorf("reset in place: version %d desired $version %v, want 3 and 3", tw.Version, tw.Properties.Desired["$version"])
			}
		})
	}
}

// TestReprovisioningEndsTheOldHubConnection: a device moved to another hub
// loses its identity in the old one, and with it its MQTT connection there,
// whether the assignment is committed at once or after a delay.
func TestReprovisioningEndsTheOldHubConnection(t *testing.T) {
	for _, delay := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) { testReprovisioningEndsTheOldHubConnection(t, delay) })
	}
}

func testReprovisioningEndsTheOldHubConnection(t *testing.T, delay time.Duration) {
	f := start(t, delay)
	ctx := t.Context()
	const rid = "dev-moving"
	ie, key := f.enrollment(t, dps.IndividualEnrollment{RegistrationID: rid, AllocationPolicy: dps.AllocationStatic, IoTHubs: f.hubs[:1]})
	if _, _, err := f.register(t, rid, key, ""); err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 1)
	o := paho.NewClientOptions().AddBroker("ssl://" + f.em.Env().HubMQTTEndpoints[0]).SetClientID(rid).
		SetUsername(f.hubs[0] + "/" + rid + "/?api-version=2021-04-12").
		SetPassword(keys.SignSAS(f.hubs[0]+"/devices/"+rid, key, "", time.Now().Add(time.Hour))).
		SetTLSConfig(&tls.Config{RootCAs: f.em.CertPool()}).SetProtocolVersion(4).SetAutoReconnect(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)

	ie.IoTHubs = f.hubs[1:]
	if _, err := f.svc.CreateOrUpdateEnrollment(ctx, ie, nil); err != nil {
		t.Fatal(err)
	}
	if st, _, err := f.register(t, rid, key, ""); err != nil || st.AssignedHub != f.hubs[1] {
		t.Fatalf("re-registration: %+v, %v", st, err)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection to the hub the device left is still open")
	}
}
