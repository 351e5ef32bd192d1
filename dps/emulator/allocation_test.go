package emulator

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

func TestRendezvousSplitsEvenlyAndStably(t *testing.T) {
	hubs := []linkedHub{{Index: 1, HostName: "a.azure-devices.net", Weight: 1}, {Index: 2, HostName: "b.azure-devices.net", Weight: 1}}
	const n = 10000
	count := map[string]int{}
	first := make([]string, n)
	for i := range n {
		h, ok := rendezvous(fmt.Sprintf("device-%05d", i), hubs)
		if !ok {
			t.Fatal("no hub")
		}
		count[h.HostName]++
		first[i] = h.HostName
	}
	for host, c := range count {
		if share := float64(c) / n; share < 0.47 || share > 0.53 {
			t.Errorf("%s got %.1f%% of %d devices, want 50%% ± 3", host, 100*share, n)
		}
	}
	// Stable: the same ID (in any casing) lands on the same hub every time,
	// whatever the order the hubs are listed in.
	rev := []linkedHub{hubs[1], hubs[0]}
	for i := range n {
		h, _ := rendezvous(strings.ToUpper(fmt.Sprintf("device-%05d", i)), rev)
		if h.HostName != first[i] {
			t.Fatalf("device-%05d moved from %s to %s", i, first[i], h.HostName)
		}
	}
	t.Logf("split: %v", count)
}

func TestRendezvousFollowsWeights(t *testing.T) {
	hubs := []linkedHub{{HostName: "a", Weight: 1}, {HostName: "b", Weight: 3}}
	b := 0
	for i := range 10000 {
		if h, _ := rendezvous(fmt.Sprintf("d%d", i), hubs); h.HostName == "b" {
			b++
		}
	}
	if b < 7200 || b > 7800 {
		t.Errorf("weight 3 of 4 got %d of 10000, want about 7500", b)
	}
	t.Logf("weight 3 of 4 got %d of 10000", b)
}

func TestNoHubIs400208(t *testing.T) {
	hubs := []linkedHub{{HostName: "a", ApplyAllocation: false}}
	cands, err := candidateHubs(enrollmentView{}, hubs)
	if err != nil || len(cands) != 0 {
		t.Fatalf("candidates %v, %v; want none (the only hub does not take part)", cands, err)
	}
	_, err = candidateHubs(enrollmentView{iotHubs: []string{"elsewhere"}}, hubs)
	var ae *allocationError
	if !errors.As(err, &ae) || ae.code != codeNoHub {
		t.Fatalf("err = %v, want 400208", err)
	}
}

// TestHashedReRegistrationKeepsHub registers devices through a hashed group
// over both hubs over HTTPS, twice, and checks every device stays put.
func TestHashedReRegistrationKeepsHub(t *testing.T) {
	e := startTest(t, Options{Seed: "none"})
	gk := createGroup(t, e, map[string]any{"enrollmentGroupId": "fleet", "allocationPolicy": "hashed"})
	const n = 200
	hubOf := make([]string, n)
	perHub := map[string]int{}
	var mu sync.Mutex
	for round := range 2 {
		var wg sync.WaitGroup
		for w := range 20 {
			wg.Go(func() {
				for i := w; i < n; i += 20 {
					rid := fmt.Sprintf("sensor-%03d", i)
					k, _ := keys.DeriveDeviceKey(gk, rid)
					st := newRawDevice(t, e, rid, k).register(`{"registrationId":"` + rid + `"}`)
					if st.Status != dps.StatusAssigned {
						t.Errorf("%s: %+v", rid, st)
						return
					}
					mu.Lock()
					if round == 0 {
						hubOf[i] = st.RegistrationState.AssignedHub
						perHub[hubOf[i]]++
					} else if st.RegistrationState.AssignedHub != hubOf[i] {
						t.Errorf("%s moved from %s to %s on re-registration", rid, hubOf[i], st.RegistrationState.AssignedHub)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	if len(perHub) != 2 {
		t.Errorf("devices went to %v, want both hubs", perHub)
	}
	// The service API lists what the device API recorded.
	_, b := newSvc(t, e).must(http.StatusOK, http.MethodPost, "/registrations/fleet/query?api-version=2021-10-01", nil, "x-ms-max-item-count", "1000")
	if got := len(decode[[]dps.DeviceRegistrationState](t, b)); got != n {
		t.Errorf("service API lists %d records, want %d", got, n)
	}
}

func BenchmarkRendezvous(b *testing.B) {
	hubs := []linkedHub{{HostName: "a.azure-devices.net", Weight: 1}, {HostName: "b.azure-devices.net", Weight: 1}}
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("device-%05d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rendezvous(ids[i%len(ids)], hubs)
	}
}

func TestWebhookErrorsKeepTheCodeSecret(t *testing.T) {
	// A redirect to a dead URL that carries its own code.
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/next?code=REDIRECTSECRET", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	for _, raw := range []string{
		"http://127.0.0.1:1/api?code=SECRET",
		"HTTP://127.0.0.1:1/api?code=SECRET", // url.Parse lowercases the scheme in the error's URL
		redirect.URL + "/api?code=SECRET",
	} {
		req, err := http.NewRequest(http.MethodPost, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = http.DefaultClient.Do(req)
		if err == nil {
			t.Fatalf("%s: no error", raw)
		}
		if msg := redactErr(err, raw, redactURL(raw)); strings.Contains(msg, "SECRET") {
			t.Errorf("the error names the code: %s", msg)
		}
	}
}
