package emulator

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
)

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	e, err := Start(context.Background(), Options{DataDir: dir, Seed: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	s := newSvc(t, e)
	_, b := s.must(200, "PUT", "/enrollmentGroups/kept"+av, symGroup("kept"))
	before := decode[dps.EnrollmentGroup](t, b)
	env1, pool1 := e.Env(), e.CertPool()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := startTest(t, Options{DataDir: dir, Seed: "demo"})
	env2 := e2.Env()
	if env1.DPSConnectionString != env2.DPSConnectionString || env1.IDScope != env2.IDScope || strings.Join(env1.HubConnectionStrings, ",") != strings.Join(env2.HubConnectionStrings, ",") {
		t.Fatalf("identity changed across a restart:\n%s\n%s", env1, env2)
	}
	s2 := newSvc(t, e2)
	s2.client.Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	if !e2.CertPool().Equal(pool1) {
		t.Fatal("the CA changed across a restart")
	}
	_, b = s2.must(200, "POST", "/enrollmentGroups/kept/attestationmechanism"+av, nil)
	if att := decode[dps.AttestationMechanism](t, b); att.SymmetricKey.PrimaryKey != before.Attestation.SymmetricKey.PrimaryKey {
		t.Fatal("the group's key changed across a restart")
	}
	// The demo seed is not applied twice.
	_, b = s2.must(200, "POST", "/registrations/"+DemoHashedGroup+"/query"+av, nil, "x-ms-max-item-count", "1000")
	if n := len(decode[[]dps.DeviceRegistrationState](t, b)); n != demoFleetSize {
		t.Fatalf("%d demo records after a restart, want %d", n, demoFleetSize)
	}
	info, err := os.Stat(filepath.Join(dir, EnvFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", EnvFile, err, info.Mode())
	}
	for _, f := range []string{caKeyFile, dbFile} {
		if info, err := os.Stat(filepath.Join(dir, f)); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, want 0600", f, info.Mode())
		}
	}
}

// TestUncleanStop kills an emulator process right after it acknowledged a
// write; the write must be there when the data dir is opened again.
func TestUncleanStop(t *testing.T) {
	if os.Getenv("EMULATOR_CHILD_DIR") != "" {
		t.Skip("runs as the child of TestUncleanStop")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildEmulator$")
	cmd.Env = append(os.Environ(), "EMULATOR_CHILD_DIR="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var env []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(dir, EnvFile)); err == nil && len(b) > 0 {
			env = b
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child emulator did not start")
		}
	}
	child := &Emulator{env: parseEnvForTest(t, string(env))}
	ca, err := loadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	child.ca = ca
	s := newSvc(t, child)
	var etags []string
	for i := range 20 {
		_, b := s.must(200, "PUT", "/enrollmentGroups/acked-"+string(rune('a'+i))+av, symGroup("acked-"+string(rune('a'+i))))
		etags = append(etags, decode[dps.EnrollmentGroup](t, b).ETag)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	e := startTest(t, Options{DataDir: dir})
	s2 := newSvc(t, e)
	for i, want := range etags {
		_, b := s2.must(200, "GET", "/enrollmentGroups/acked-"+string(rune('a'+i))+av, nil)
		if got := decode[dps.EnrollmentGroup](t, b).ETag; got != want {
			t.Fatalf("group %d: etag %s after the kill, want %s", i, got, want)
		}
	}
}

// TestChildEmulator is the process TestUncleanStop kills.
func TestChildEmulator(t *testing.T) {
	dir := os.Getenv("EMULATOR_CHILD_DIR")
	if dir == "" {
		t.Skip("only runs as the child of TestUncleanStop")
	}
	if _, err := Start(context.Background(), Options{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}

func parseEnvForTest(t *testing.T, s string) Env {
	var env Env
	for line := range strings.Lines(s) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "DPS_CONNECTION_STRING":
			env.DPSConnectionString = v
		case "DPS_ID_SCOPE":
			env.IDScope = v
		}
	}
	if env.DPSConnectionString == "" {
		t.Fatalf("no DPS_CONNECTION_STRING in %q", s)
	}
	return env
}

// TestHubPortTakenOnRestart: when a hub's old port is taken, the hub gets
// another one, and the groups and records that name it follow.
func TestHubPortTakenOnRestart(t *testing.T) {
	dir := t.TempDir()
	e, err := Start(context.Background(), Options{DataDir: dir, Seed: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	oldHost, oldAddr := e.hubs[0].HostName, e.hubs[0].Addr
	e.Close()
	squat, err := net.Listen("tcp", oldAddr)
	if err != nil {
		t.Skipf("cannot take the hub's old port: %v", err)
	}
	defer squat.Close()

	e2 := startTest(t, Options{DataDir: dir, Seed: "demo"})
	newHost := e2.hubs[0].HostName
	if newHost == oldHost {
		t.Fatal("the hub kept a port that is taken")
	}
	s := newSvc(t, e2)
	_, b := s.must(200, "GET", "/enrollmentGroups/"+TutorialGroupID+av, nil)
	if g := decode[dps.EnrollmentGroup](t, b); g.IoTHubs[0] != newHost {
		t.Errorf("tutorial group names %v, want %s", g.IoTHubs, newHost)
	}
	_, b = s.must(200, "POST", "/registrations/"+DemoHashedGroup+"/query"+av, nil)
	for _, st := range decode[[]dps.DeviceRegistrationState](t, b) {
		if st.AssignedHub == oldHost {
			t.Fatalf("record %s still names %s", st.RegistrationID, oldHost)
		}
		rec, err := e2.store.registration(context.Background(), st.RegistrationID)
		if err != nil || rec.AssignedHub != st.AssignedHub {
			t.Fatalf("record columns and document disagree: %v %q vs %q", err, rec.AssignedHub, st.AssignedHub)
		}
	}
}

func TestSecondEmulatorOnSameDirRefused(t *testing.T) {
	dir := t.TempDir()
	startTest(t, Options{DataDir: dir})
	_, err := Start(context.Background(), Options{DataDir: dir})
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second Start on the same dir: %v, want ErrDataDirInUse", err)
	}
}

func TestOtherSchemaVersionRefused(t *testing.T) {
	dir := t.TempDir()
	e := startTest(t, Options{DataDir: dir})
	if _, err := e.store.w.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	e.Close()
	_, err := Start(context.Background(), Options{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "delete that directory") {
		t.Fatalf("Start on a schema-99 dir: %v", err)
	}
}
