package device_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// TestRegisterRetriesThrottle: past the emulator's rate limit the register
// and the polls get 429 + Retry-After; a client with azcore's retry policy
// waits and completes the registration.
func TestRegisterRetriesThrottle(t *testing.T) {
	t.Parallel()
	f := startWith(t, emulator.Options{ThrottlePerMinute: 30}) // one operation every 2 s once the bucket is empty
	gk := f.group(t, dps.EnrollmentGroup{EnrollmentGroupID: "busy"})

	// Spend the bucket with service reads (the fixture's clients do not retry).
	drained := false
	for range 100 {
		_, err := f.svc.GetEnrollmentGroup(t.Context(), "busy")
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusTooManyRequests {
			drained = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !drained {
		t.Fatal("100 reads under a 30/min limit were never throttled")
	}
	before := f.em.Stats().Throttled

	opts := f.options
	opts.Retry = policy.RetryOptions{MaxRetries: 5, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 5 * time.Second}
	env := f.em.Env()
	dc, err := device.NewClient(env.IDScope, &device.ClientOptions{ClientOptions: opts, ProvisioningHost: env.DeviceEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	f.dev = dc
	st, _, err := f.register(t, "dev-1", derive(t, gk, "dev-1"), "")
	if err != nil || st.Status != dps.StatusAssigned {
		t.Fatalf("register under throttling: %+v, %v", st, err)
	}
	if n := f.em.Stats().Throttled - before; n == 0 {
		t.Error("the registration was never throttled, so the retry was not exercised")
	} else {
		t.Logf("registration completed after %d throttled answers", n)
	}
}
