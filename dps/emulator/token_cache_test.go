package emulator

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dpsconsole/dpsconsole/keys"
)

// A remembered token is valid until its expiry and not a moment after, and
// the cache stays bounded.
func TestVerifiedTokensExpireAndStayBounded(t *testing.T) {
	var v verifiedTokens
	now := time.Unix(1700000000, 0)
	if v.valid("tok", now) {
		t.Fatal("an unseen token is valid")
	}
	v.add("tok", now.Add(time.Second))
	if !v.valid("tok", now.Add(999*time.Millisecond)) {
		t.Fatal("a remembered token before its expiry is not valid")
	}
	if v.valid("tok", now.Add(time.Second)) || v.valid("tok", now) {
		t.Fatal("a remembered token is valid at its expiry, or again after it")
	}
	long := strings.Repeat("x", maxVerifiedTokenLen+1)
	v.add(long, now.Add(time.Hour))
	if v.valid(long, now) {
		t.Fatal("a token longer than any SDK sends is held")
	}
	for i := range maxVerifiedTokens + 1 {
		v.add(fmt.Sprint(i), now.Add(time.Hour))
	}
	if len(v.m) > maxVerifiedTokens {
		t.Fatalf("%d tokens remembered, the bound is %d", len(v.m), maxVerifiedTokens)
	}
}

// Through the hub's service API: a token that was accepted is refused once
// it expires, and one that failed is refused every time (nothing is
// remembered for it).
func TestHubServiceTokenAcceptedOnlyUntilExpiry(t *testing.T) {
	e := startTest(t, Options{Seed: "none", HubAddrs: []string{"127.0.0.1:0"}})
	h := e.hubs[0]
	get := func(auth string) int {
		r := httptest.NewRequest(http.MethodGet, "https://"+h.HostName+"/devices?api-version=2021-04-12", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		e.serveHub(h, w, r)
		return w.Code
	}
	exp := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	good := keys.SignSAS(h.HostName, h.key, h.PolicyName, exp)
	wrong := keys.SignSAS(h.HostName, keys.GenerateKey(), h.PolicyName, exp)
	for range 2 {
		if c := get(good); c != http.StatusOK {
			t.Fatalf("valid token: HTTP %d", c)
		}
		if c := get(wrong); c != http.StatusUnauthorized {
			t.Fatalf("token signed with another key: HTTP %d, want 401", c)
		}
	}
	time.Sleep(time.Until(exp))
	if c := get(good); c != http.StatusUnauthorized {
		t.Fatalf("accepted token after its expiry: HTTP %d, want 401", c)
	}
}
