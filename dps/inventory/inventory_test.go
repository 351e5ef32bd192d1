package inventory_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/inventory"
	"github.com/dpsconsole/dpsconsole/keys"
)

// fixture is an emulator holding a known shape:
//
//	big    symmetric key, 2,500 records (three pages)
//	small  symmetric key, 3 records
//	empty  symmetric key, no records
//	gone   deleted, 7 records (found only through KnownGroups)
//	one individual enrollment with a record, one without
type fixture struct {
	emu *emulator.Emulator
	c   *dps.Client
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	ctx := context.Background()
	emu, err := emulator.Start(ctx, emulator.Options{DataDir: tb.TempDir(), Seed: "none"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { emu.Close() })
	tr, err := dps.NewTransport(emu.CAPEM())
	if err != nil {
		tb.Fatal(err)
	}
	opts := &dps.ClientOptions{}
	opts.Transport = tr
	c, err := dps.NewClientFromConnectionString(emu.Env().DPSConnectionString, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{emu: emu, c: c}
}

func (f *fixture) clientOptions(tb testing.TB) azcore.ClientOptions {
	tr, err := dps.NewTransport(f.emu.CAPEM())
	if err != nil {
		tb.Fatal(err)
	}
	return azcore.ClientOptions{Transport: tr}
}

func symmetricKey(k keys.Key) dps.AttestationMechanism {
	return dps.AttestationMechanism{Type: dps.AttestationSymmetricKey, SymmetricKey: &dps.SymmetricKeyAttestation{
		PrimaryKey: dps.Secret(k.Base64()), SecondaryKey: dps.Secret(keys.GenerateKey().Base64())}}
}

func (f *fixture) seedShape(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	for id, n := range map[string]int{"big": 2500, "small": 3, "empty": 0} {
		if _, err := f.c.CreateOrUpdateEnrollmentGroup(ctx, dps.EnrollmentGroup{EnrollmentGroupID: id, Attestation: symmetricKey(keys.GenerateKey())}, nil); err != nil {
			t.Fatal(err)
		}
		if err := f.emu.SeedRegistrations(ctx, id, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.emu.SeedRegistrations(ctx, "gone", 7); err != nil {
		t.Fatal(err)
	}
	hub := f.emu.Env().HubConnectionStrings[0]
	hubHost, _ := keys.ParseServiceConnectionString(hub)
	k := keys.GenerateKey()
	for _, rid := range []string{"solo", "never-registered"} {
		if _, err := f.c.CreateOrUpdateEnrollment(ctx, dps.IndividualEnrollment{RegistrationID: rid, Attestation: symmetricKey(k),
			IoTHubs: []string{hubHost.HostName}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	env := f.emu.Env()
	dev, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: f.clientOptions(t), ProvisioningHost: env.DeviceEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := dev.Register(ctx, "solo", k, &device.RegisterOptions{PollInterval: 20 * time.Millisecond}); err != nil || st.Status != dps.StatusAssigned {
		t.Fatalf("register solo: %+v %v", st, err)
	}
}

func TestCountMeasuresEveryPart(t *testing.T) {
	f := newFixture(t)
	f.seedShape(t)
	var progress []inventory.Progress
	counts, err := inventory.Count(t.Context(), f.c, inventory.Options{KnownGroups: []string{"GONE", "big"}, KnownHubs: []string{"Other-Hub.example"}},
		func(p inventory.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	want := []inventory.GroupCount{
		{ID: "big", Attestation: dps.AttestationSymmetricKey, Records: 2500},
		{ID: "GONE", Records: 7, Deleted: true},
		{ID: "small", Attestation: dps.AttestationSymmetricKey, Records: 3},
		{ID: "empty", Attestation: dps.AttestationSymmetricKey},
	}
	if !slices.Equal(counts.Groups, want) {
		t.Errorf("groups:\n got %+v\nwant %+v", counts.Groups, want)
	}
	if counts.Enrollments != 2 || counts.EnrollmentRecords != 1 {
		t.Errorf("enrollments %d, with a record %d; want 2, 1", counts.Enrollments, counts.EnrollmentRecords)
	}
	for k, used := range map[inventory.Kind]int{inventory.Registrations: 2511, inventory.Enrollments: 2, inventory.SymmetricKeyGroups: 3,
		inventory.X509Groups: 0, inventory.LinkedHubs: 2} {
		if got := counts.Used(k); got != used {
			t.Errorf("%s: used %d, want %d", inventory.Limits[k].Resource, got, used)
		}
	}
	// Progress streams page by page: the big group's three pages each show.
	var seen []int
	for _, p := range progress {
		if p.Stage == "records of big" {
			seen = append(seen, p.Records)
		}
	}
	if !slices.Equal(seen, []int{0, 1000, 2000, 2500}) || progress[len(progress)-1].Records != 2511 || progress[len(progress)-1].GroupsDone != 4 {
		t.Errorf("progress of big %v; last %+v", seen, progress[len(progress)-1])
	}
}

func TestCountStopsWhenCancelled(t *testing.T) {
	f := newFixture(t)
	f.seedShape(t)
	ctx, cancel := context.WithCancel(t.Context())
	_, err := inventory.Count(ctx, f.c, inventory.Options{}, func(p inventory.Progress) {
		if p.Records >= 1000 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestLimitsAreTheDocumentedOnes(t *testing.T) {
	// The numbers of the Azure docs' table (limits.go quotes it).
	want := map[inventory.Kind]inventory.Limit{
		inventory.Registrations:      {Resource: "registrations", Max: 1_000_000, Adjustable: true},
		inventory.Enrollments:        {Resource: "individual enrollments", Max: 1_000_000, Adjustable: true},
		inventory.X509Groups:         {Resource: "enrollment groups (X.509 certificate)", Max: 100, Adjustable: true},
		inventory.SymmetricKeyGroups: {Resource: "enrollment groups (symmetric key)", Max: 100, Adjustable: false},
		inventory.LinkedHubs:         {Resource: "linked IoT hubs", Max: 50, Adjustable: false},
	}
	for k, l := range want {
		if inventory.Limits[k] != l {
			t.Errorf("%v: %+v, want %+v", k, inventory.Limits[k], l)
		}
	}
}

// servedItems is every item of a query as the emulator serves it, read with
// a plain HTTP client (not the dps client) and cut by encoding/json.
func (f *fixture) servedItems(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for token := ""; ; {
		body, next := f.serve(t, http.MethodPost, path, token)
		var items []json.RawMessage
		if err := json.Unmarshal([]byte(body), &items); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
		for _, it := range items {
			out = append(out, string(it))
		}
		if token = next; token == "" {
			return out
		}
	}
}

// served is the body of one request, trailing newline left out.
func (f *fixture) served(t *testing.T, method, path, token string) string {
	body, _ := f.serve(t, method, path, token)
	return strings.TrimSuffix(body, "\n")
}

// serve sends one request with the DPS's SAS and returns the body and
// continuation token.
func (f *fixture) serve(t *testing.T, method, path, token string) (string, string) {
	t.Helper()
	cs, err := keys.ParseServiceConnectionString(f.emu.Env().DPSConnectionString)
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := dps.NewTransport(f.emu.CAPEM())
	req, _ := http.NewRequest(method, "https://"+cs.HostName+path+"?api-version="+dps.APIVersion, nil)
	req.Header.Set("Authorization", keys.SignSAS(cs.HostName, cs.SharedAccessKey, cs.SharedAccessKeyName, time.Now().Add(time.Hour)))
	req.Header.Set("x-ms-max-item-count", "1000")
	if token != "" {
		req.Header.Set("x-ms-continuation", token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, body)
	}
	return string(body), resp.Header.Get("x-ms-continuation")
}

func TestExportJSONLinesAreTheServiceItems(t *testing.T) {
	f := newFixture(t)
	f.seedShape(t)
	var buf bytes.Buffer
	var progress []int
	n, err := inventory.Export(t.Context(), f.c, &buf, inventory.ExportOptions{Format: inventory.JSONL, KnownGroups: []string{"gone"}},
		func(n int) { progress = append(progress, n) })
	if err != nil || n != 2511 {
		t.Fatalf("exported %d, %v", n, err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines for %d records", len(lines), n)
	}
	// Byte for byte what the service sent: compare with the items of the
	// service's own pages, read here without the client.
	want := slices.Concat(f.servedItems(t, "/registrations/big/query"), f.servedItems(t, "/registrations/small/query"),
		f.servedItems(t, "/registrations/empty/query"), f.servedItems(t, "/registrations/gone/query"))
	want = append(want, f.served(t, http.MethodGet, "/registrations/solo", ""))
	if !slices.Equal(lines, want) {
		t.Errorf("lines differ from the served items: %d vs %d; first line %s, first item %s", len(lines), len(want), lines[0], want[0])
	}
	if progress[len(progress)-1] != n || len(progress) < 4 {
		t.Errorf("progress %v", progress)
	}

	buf.Reset()
	if n, err := inventory.Export(t.Context(), f.c, &buf, inventory.ExportOptions{Format: inventory.JSONL, Group: "small"}, nil); err != nil || n != 3 {
		t.Errorf("one group: %d, %v", n, err)
	}
}

func TestExportCSV(t *testing.T) {
	f := newFixture(t)
	f.seedShape(t)
	var buf bytes.Buffer
	n, err := inventory.Export(t.Context(), f.c, &buf, inventory.ExportOptions{Format: inventory.CSV}, nil)
	if err != nil || n != 2504 {
		t.Fatalf("exported %d, %v", n, err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != n+1 || !slices.Equal(rows[0], inventory.CSVHeader) {
		t.Fatalf("%d rows, %v; header %v", len(rows), err, rows[0])
	}
	if r := rows[1]; r[0] != "big-0000000" || r[1] != "big-0000000" || r[2] != "big" || r[3] != "assigned" || r[5] == "" || r[10] == "" {
		t.Errorf("first row %q", r)
	}
	if r := rows[n]; r[0] != "solo" || r[2] != "" || r[3] != "assigned" {
		t.Errorf("last row (the individual enrollment's) %q", r)
	}
}

func TestWriteFileLeavesNoPartialFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	os.WriteFile(path, []byte("before\n"), 0o644)
	err := inventory.WriteFile(path, func(w io.Writer) error {
		w.Write([]byte("half"))
		return errors.New("listing stopped")
	})
	if err == nil || err.Error() != "listing stopped" {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "before\n" {
		t.Errorf("the file was touched: %q", b)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary file stayed: %v", err)
	}
	if err := inventory.WriteFile(path, func(w io.Writer) error { _, err := w.Write([]byte("after\n")); return err }); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "after\n" || fi.Mode().Perm() != 0o600 {
		t.Errorf("file %q mode %v", b, fi.Mode())
	}
	if err := inventory.WriteFile(dir, func(io.Writer) error { return nil }); err == nil || !errors.Is(err, syscall.EISDIR) {
		t.Errorf("directory: %v", err)
	}
}
