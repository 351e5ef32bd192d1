package emulator

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

func TestDemoSeed(t *testing.T) {
	e := startTest(t, Options{Seed: "demo"})
	s := newSvc(t, e)
	ctx := context.Background()

	_, b := s.must(200, "POST", "/enrollmentGroups/"+TutorialGroupID+"/attestationmechanism"+av, nil)
	if k := decode[dps.AttestationMechanism](t, b).SymmetricKey.PrimaryKey.Reveal(); k != TutorialGroupKey {
		t.Fatal("the tutorial group does not have the tutorial's primary key")
	}
	_, b = s.must(200, "GET", "/enrollmentGroups/"+TutorialGroupID+av, nil)
	if g := decode[dps.EnrollmentGroup](t, b); g.AllocationPolicy != dps.AllocationStatic || len(g.IoTHubs) != 1 || g.IoTHubs[0] != e.hubs[0].HostName {
		t.Fatalf("tutorial group: %s", b)
	}

	// Every fleet device is assigned, and its hub identity holds the keys
	// derived from the group keys, as if it had registered.
	fleet, err := e.store.group(ctx, DemoHashedGroup)
	if err != nil {
		t.Fatal(err)
	}
	if fleet.AllocationPolicy != dps.AllocationHashed || len(fleet.IoTHubs) != 2 {
		t.Fatalf("hashed group: %+v", fleet)
	}
	groupKey, _ := keys.ParseKey(fleet.Attestation.SymmetricKey.PrimaryKey.Reveal())
	p, err := e.store.registrationDocs(ctx, DemoHashedGroup, "", 1000)
	docs := decode[[]json.RawMessage](t, p.body)
	if err != nil || len(docs) != demoFleetSize {
		t.Fatalf("%d fleet records, err %v", len(docs), err)
	}
	perHub := map[string]int{}
	for _, d := range docs {
		st := decode[dps.DeviceRegistrationState](t, d)
		perHub[st.AssignedHub]++
		linked, _ := e.store.linkedHubs(ctx)
		if want := hashedHub(st.RegistrationID, linked).HostName; st.AssignedHub != want {
			t.Fatalf("%s is on %s; the hashed policy gives %s", st.RegistrationID, st.AssignedHub, want)
		}
		h := e.hubByHost(t, st.AssignedHub)
		dev, err := e.store.hubDevice(ctx, h, st.DeviceID)
		if err != nil {
			t.Fatalf("%s has no identity in %s: %v", st.DeviceID, st.AssignedHub, err)
		}
		want, _ := keys.DeriveDeviceKey(groupKey, st.RegistrationID)
		if dev.PrimaryKey != want.Base64() {
			t.Fatalf("%s: hub key is not the derived device key", st.DeviceID)
		}
	}
	if len(perHub) != 2 {
		t.Fatalf("fleet spread over %v, want both hubs", perHub)
	}

	// The retired group is gone but its records and devices remain.
	s.must(404, "GET", "/enrollmentGroups/"+DemoDeletedGroup+av, nil)
	op, err := e.store.registrationDocs(ctx, DemoDeletedGroup, "", 1000)
	orphans := decode[[]json.RawMessage](t, op.body)
	if err != nil || len(orphans) != demoRetiredSize {
		t.Fatalf("%d orphans, err %v", len(orphans), err)
	}
	st := decode[dps.DeviceRegistrationState](t, orphans[0])
	if _, err := e.store.hubDevice(ctx, e.hubByHost(t, st.AssignedHub), st.DeviceID); err != nil {
		t.Fatalf("orphan %s has no hub device: %v", st.DeviceID, err)
	}
}

func (e *Emulator) hubByHost(t *testing.T, host string) int {
	t.Helper()
	for _, h := range e.hubs {
		if h.HostName == host {
			return h.Index
		}
	}
	t.Fatalf("no hub %q", host)
	return 0
}

// TestCertificateCoversListeners: every listener, each on its own loopback
// address, verifies against the CA under the host name clients use.
func TestCertificateCoversListeners(t *testing.T) {
	e := startTest(t, Options{HTTPSAddr: "127.0.24.1:0", HubAddrs: []string{"127.0.24.2:0", "127.0.24.3:0"}})
	hosts := []string{e.dpsHost}
	for _, h := range e.hubs {
		hosts = append(hosts, h.HostName)
	}
	for _, hp := range hosts {
		host, _, _ := net.SplitHostPort(hp)
		conn, err := tls.Dial("tcp", hp, &tls.Config{RootCAs: e.CertPool(), ServerName: host})
		if err != nil {
			t.Fatalf("%s: %v", hp, err)
		}
		conn.Close()
	}
	if e.hubs[1].HostName == e.hubs[0].HostName {
		t.Fatal("two hubs share a host name")
	}
}
