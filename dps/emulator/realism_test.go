package emulator

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

func TestThrottleTokenBucket(t *testing.T) {
	x := newRealism(60, 0, &stats{}) // one a second
	now := x.last
	for i := range 60 {
		if _, ok := x.take(now); !ok {
			t.Fatalf("request %d of the first 60 was throttled", i+1)
		}
	}
	after, ok := x.take(now)
	if ok || after != 1 {
		t.Fatalf("61st request: ok=%v retry-after=%d, want throttled with 1 s", ok, after)
	}
	if _, ok := x.take(now.Add(1100 * time.Millisecond)); !ok {
		t.Fatal("a token did not come back after a second")
	}
	slow := newRealism(2, 0, &stats{}) // one every 30 s
	slow.take(slow.last)
	slow.take(slow.last)
	if after, ok := slow.take(slow.last.Add(10 * time.Second)); ok || after != 20 {
		t.Fatalf("retry-after %d, want 20 (seconds until the next token)", after)
	}
}

func TestThrottleOverHTTP(t *testing.T) {
	e := startTest(t, Options{ThrottlePerMinute: 5})
	s := newSvc(t, e)
	for range 5 {
		s.must(200, "POST", "/enrollmentGroups/query"+av, nil)
	}
	resp, b := s.must(429, "POST", "/enrollmentGroups/query"+av, nil)
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 12 {
		t.Fatalf("Retry-After %q, want whole seconds in 1..12", resp.Header.Get("Retry-After"))
	}
	if det := decode[dps.ErrorDetails](t, b); det.ErrorCode != codeThrottled {
		t.Fatalf("429 body: %s", b)
	}
	if n := e.Stats().Throttled; n != 1 {
		t.Fatalf("Stats().Throttled = %d, want 1", n)
	}
}

func TestFaultInjection(t *testing.T) {
	e := startTest(t, Options{FaultRate: 1})
	s := newSvc(t, e)
	var fivehundreds, dropped int
	for range 40 {
		r, err := s.client.Do(mustRequest(t, s, "POST", "/enrollmentGroups/query"+av))
		if err != nil {
			dropped++
			continue
		}
		r.Body.Close()
		if r.StatusCode != 500 || r.Header.Get("x-ms-error-code") != "500000" {
			t.Fatalf("status %d with fault rate 1", r.StatusCode)
		}
		fivehundreds++
	}
	if fivehundreds == 0 || dropped == 0 {
		t.Fatalf("%d 500s and %d dropped connections; want both kinds", fivehundreds, dropped)
	}

	none := startTest(t, Options{FaultRate: 0})
	sn := newSvc(t, none)
	for range 20 {
		sn.must(200, "POST", "/enrollmentGroups/query"+av, nil)
	}
}

// TestFaultRateMustBeANumberIn0To1: NaN passes "< 0 || > 1"; it must not.
func TestFaultRateMustBeANumberIn0To1(t *testing.T) {
	for _, r := range []float64{math.NaN(), math.Inf(1), -0.1, 1.5} {
		_, err := Start(context.Background(), Options{DataDir: t.TempDir(), FaultRate: r})
		if err == nil || !strings.Contains(err.Error(), "between 0 and 1") {
			t.Errorf("fault rate %v: %v, want it refused", r, err)
		}
	}
}

// TestThrottleSparesPolls: the quota counts operations (service calls and
// registrations); polls are not billed and have their own per-device limit
// (dps-protocol.md §7), so a spent quota still answers a device's poll.
func TestThrottleSparesPolls(t *testing.T) {
	e := startTest(t, Options{Seed: "none", ThrottlePerMinute: 3, AssignmentDelay: time.Hour})
	gk := createGroup(t, e, map[string]any{"enrollmentGroupId": "g"}) // operation 1
	k, _ := keys.DeriveDeviceKey(gk, "dev")
	d := newRawDevice(t, e, "dev", k)
	resp, b := d.do(http.MethodPut, "/register?api-version=2019-03-31", `{"registrationId":"dev"}`) // 2
	var st dps.RegistrationOperationStatus
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &st) != nil {
		t.Fatalf("register: HTTP %d %s", resp.StatusCode, b)
	}
	newSvc(t, e).must(http.StatusOK, "POST", "/enrollmentGroups/query"+av, nil) // 3: the quota is spent
	for range 5 {
		if resp, b := d.do(http.MethodGet, "/operations/"+st.OperationID+"?api-version=2021-06-01", ""); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("poll with the quota spent: HTTP %d %s", resp.StatusCode, b)
		}
	}
	if resp, _ := d.do(http.MethodPut, "/register?api-version=2019-03-31", `{"registrationId":"dev"}`); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second register with the quota spent: HTTP %d, want 429", resp.StatusCode)
	}
}
