package dps_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/keys"
)

// The client against the real emulator, in-process, over real TLS.

func startEmulator(tb testing.TB, opts emulator.Options) *emulator.Emulator {
	tb.Helper()
	opts.DataDir = tb.TempDir()
	if opts.Seed == "" {
		opts.Seed = "none"
	}
	emu, err := emulator.Start(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { emu.Close() })
	return emu
}

// statusCounter counts the status codes of every try (it sits after the
// retry policy), so a test can see retries happen.
type statusCounter struct{ n [600]atomic.Int32 }

func (s *statusCounter) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err == nil {
		s.n[resp.StatusCode].Add(1)
	}
	return resp, err
}

func clientFor(tb testing.TB, emu *emulator.Emulator, connStr string, mod func(*dps.ClientOptions)) *dps.Client {
	tb.Helper()
	tr, err := dps.NewTransport(emu.CAPEM())
	if err != nil {
		tb.Fatal(err)
	}
	opts := &dps.ClientOptions{}
	opts.Transport = tr
	if mod != nil {
		mod(opts)
	}
	if connStr == "" {
		connStr = emu.Env().DPSConnectionString
	}
	c, err := dps.NewClientFromConnectionString(connStr, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestEmulatorGroupLifecycle(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, emulator.Options{})
	c := clientFor(t, emu, "", nil)
	ctx := context.Background()

	_, err := c.GetEnrollmentGroup(ctx, "fleet")
	if !dps.IsNotFound(err) || dps.ErrorCodeOf(err)/1000 != 404 {
		t.Fatalf("get before create: %v", err)
	}
	created, err := c.CreateOrUpdateEnrollmentGroup(ctx, dps.EnrollmentGroup{
		EnrollmentGroupID: "fleet",
		Attestation:       dps.AttestationMechanism{Type: dps.AttestationSymmetricKey},
	}, nil)
	if err != nil {
		t.Fatal(dps.ErrorMessage(err))
	}
	sk := created.Attestation.SymmetricKey
	if sk == nil || sk.PrimaryKey == "" || created.ETag == "" {
		t.Fatalf("PUT answer lacks generated keys or ETag: %+v", created)
	}
	if k, err := keys.ParseKey(sk.PrimaryKey.Reveal()); err != nil || len(k.Bytes()) != keys.GeneratedKeyBytes {
		t.Errorf("generated key: %v", err)
	}

	got, err := c.GetEnrollmentGroup(ctx, "fleet")
	if err != nil {
		t.Fatal(err)
	}
	if got.Attestation.SymmetricKey != nil && got.Attestation.SymmetricKey.PrimaryKey != "" {
		t.Error("GET returned the keys")
	}
	att, err := c.GetEnrollmentGroupAttestation(ctx, "fleet")
	if err != nil || att.SymmetricKey == nil || att.SymmetricKey.PrimaryKey != sk.PrimaryKey {
		t.Fatalf("attestationmechanism: %v", err)
	}

	// Update with the ETag read; a second update with the stale one is refused.
	stale := azcore.ETag(got.ETag)
	got.Attestation = att
	got.ProvisioningStatus = dps.ProvisioningDisabled
	updated, err := c.CreateOrUpdateEnrollmentGroup(ctx, got, &dps.WriteOptions{IfMatch: &stale})
	if err != nil {
		t.Fatal(dps.ErrorMessage(err))
	}
	if updated.ETag == got.ETag || updated.ProvisioningStatus != dps.ProvisioningDisabled {
		t.Errorf("update: etag %q status %q", updated.ETag, updated.ProvisioningStatus)
	}
	_, err = c.CreateOrUpdateEnrollmentGroup(ctx, got, &dps.WriteOptions{IfMatch: &stale})
	if !dps.IsPreconditionFailed(err) {
		t.Fatalf("stale update: got %v, want 412", err)
	}
	if err := c.DeleteEnrollmentGroup(ctx, "fleet", &dps.WriteOptions{IfMatch: &stale}); !dps.IsPreconditionFailed(err) {
		t.Fatalf("stale delete: got %v, want 412", err)
	}
	current := azcore.ETag(updated.ETag)
	if err := c.DeleteEnrollmentGroup(ctx, "fleet", &dps.WriteOptions{IfMatch: &current}); err != nil {
		t.Fatal(dps.ErrorMessage(err))
	}
	if err := c.DeleteEnrollmentGroup(ctx, "fleet", nil); !dps.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestEmulatorWrongKeyIs401(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, emulator.Options{})
	cs, err := keys.ParseServiceConnectionString(emu.Env().DPSConnectionString)
	if err != nil {
		t.Fatal(err)
	}
	cs.SharedAccessKey = keys.GenerateKey()
	c := clientFor(t, emu, cs.Encode(), nil)
	_, err = c.GetEnrollmentGroup(context.Background(), "any")
	if dps.ErrorCodeOf(err) != 401002 {
		t.Fatalf("got %v, want 401002", err)
	}
	msg := dps.ErrorMessage(err)
	if !strings.Contains(msg, "401") || strings.Contains(msg, cs.SharedAccessKey.Base64()) || strings.Contains(msg, "SharedAccessSignature") {
		t.Errorf("message: %s", msg)
	}
}

func TestEmulatorBulkAndPaging(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, emulator.Options{})
	c := clientFor(t, emu, "", nil)
	ctx := context.Background()

	if _, err := c.CreateOrUpdateEnrollment(ctx, dps.IndividualEnrollment{RegistrationID: "dev-07",
		Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey}}, nil); err != nil {
		t.Fatal(dps.ErrorMessage(err))
	}
	var batch []dps.IndividualEnrollment
	for i := range 25 {
		batch = append(batch, dps.IndividualEnrollment{RegistrationID: fmt.Sprintf("dev-%02d", i),
			Attestation: dps.AttestationMechanism{Type: dps.AttestationSymmetricKey}})
	}
	res, err := c.RunEnrollmentBulk(ctx, dps.BulkEnrollmentOperation{Mode: dps.BulkCreate, Enrollments: batch})
	if err != nil {
		t.Fatal(dps.ErrorMessage(err))
	}
	if res.IsSuccessful || len(res.Errors) != 1 || res.Errors[0].RegistrationID != "dev-07" {
		t.Fatalf("bulk create over an existing enrollment: %+v", res)
	}

	seen := map[string]int{}
	pages := 0
	pager := c.NewEnrollmentPager(&dps.PagerOptions{PageSize: 3})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(dps.ErrorMessage(err))
		}
		pages++
		for _, e := range page.Items {
			seen[e.RegistrationID]++
		}
	}
	if len(seen) != 25 || pages != 9 {
		t.Errorf("%d enrollments over %d pages, want 25 over 9", len(seen), pages)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s seen %d times", id, n)
		}
	}

	if err := emu.SeedRegistrations(ctx, "gone", 50); err != nil {
		t.Fatal(err)
	}
	n := 0
	rp := c.NewRegistrationStatePager("gone", &dps.PagerOptions{PageSize: 7})
	for rp.More() {
		page, err := rp.NextPage(ctx)
		if err != nil {
			t.Fatal(dps.ErrorMessage(err))
		}
		n += len(page.Items)
	}
	if n != 50 {
		t.Errorf("listed %d registration records, want 50", n)
	}

	// Bulk delete of everything, chunked, then a registration record with ETags.
	res, err = c.RunEnrollmentBulk(ctx, dps.BulkEnrollmentOperation{Mode: dps.BulkDelete, Enrollments: batch})
	if err != nil || !res.IsSuccessful {
		t.Fatalf("bulk delete: %+v %v", res, err)
	}
	rec, err := c.GetRegistrationState(ctx, "gone-0000003")
	if err != nil {
		t.Fatal(dps.ErrorMessage(err))
	}
	bad := azcore.ETag(`"nope"`)
	if err := c.DeleteRegistrationState(ctx, rec.RegistrationID, &dps.WriteOptions{IfMatch: &bad}); !dps.IsPreconditionFailed(err) {
		t.Errorf("stale registration delete: %v", err)
	}
	good := azcore.ETag(rec.ETag)
	if err := c.DeleteRegistrationState(ctx, rec.RegistrationID, &dps.WriteOptions{IfMatch: &good}); err != nil {
		t.Error(dps.ErrorMessage(err))
	}
	if _, err := c.GetRegistrationState(ctx, rec.RegistrationID); !dps.IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
}

func TestEmulatorThrottlingIsRetried(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, emulator.Options{ThrottlePerMinute: 60})
	counter := &statusCounter{}
	c := clientFor(t, emu, "", func(o *dps.ClientOptions) { o.PerRetryPolicies = append(o.PerRetryPolicies, counter) })
	ctx := context.Background()
	start := time.Now()
	// The bucket holds 60 operations and refills one a second, so requests
	// soon meet 429 with Retry-After: 1; each must be retried to success.
	for i := 0; counter.n[http.StatusTooManyRequests].Load() < 3; i++ {
		if i == 300 {
			t.Fatal("300 requests and still not throttled 3 times")
		}
		if _, err := c.GetEnrollmentGroup(ctx, "absent"); !dps.IsNotFound(err) {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	throttled := counter.n[http.StatusTooManyRequests].Load()
	if el := time.Since(start); el < time.Duration(throttled)*time.Second/2 {
		t.Errorf("%d throttled tries finished in %v: Retry-After not honoured", throttled, el)
	}
}

func TestEmulatorFaultsAreRetried(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, emulator.Options{FaultRate: 0.3})
	counter := &statusCounter{}
	c := clientFor(t, emu, "", func(o *dps.ClientOptions) {
		o.Retry.RetryDelay = 5 * time.Millisecond
		o.Retry.MaxRetries = 10
		o.PerRetryPolicies = append(o.PerRetryPolicies, counter)
	})
	ctx := context.Background()
	for i := range 100 {
		if _, err := c.GetEnrollmentGroup(ctx, "absent"); !dps.IsNotFound(err) {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if counter.n[http.StatusInternalServerError].Load() == 0 {
		t.Error("no injected 500 seen")
	}
}

// BenchmarkListRegistrations lists 100,000 registration records through the
// client (TLS, SAS, JSON) from the emulator, 1,000 a page, fetching pages one
// after the other and with prefetch.
func BenchmarkListRegistrations(b *testing.B) {
	const records = 100_000
	emu := startEmulator(b, emulator.Options{})
	ctx := context.Background()
	if err := emu.SeedRegistrations(ctx, "bench", records); err != nil {
		b.Fatal(err)
	}
	c := clientFor(b, emu, "", nil)
	for _, prefetch := range []bool{false, true} {
		b.Run(fmt.Sprintf("prefetch=%v", prefetch), func(b *testing.B) {
			cpu0 := cpuTime()
			for b.Loop() {
				n := 0
				pager := c.NewRegistrationStatePager("bench", &dps.PagerOptions{PageSize: 1000, Prefetch: prefetch})
				for pager.More() {
					page, err := pager.NextPage(ctx)
					if err != nil {
						b.Fatal(err)
					}
					n += len(page.Items)
				}
				if n != records {
					b.Fatalf("listed %d, want %d", n, records)
				}
			}
			b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			// CPU of client and emulator together: unlike wall time, it does
			// not depend on what else the machine is running.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(records*b.N), "cpu-µs/record")
		})
	}
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
