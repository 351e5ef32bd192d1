package discovery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChoiceIsRememberedPrivatelyAndHoldsNoSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, ok, err := LoadChoice(dir); ok || err != nil {
		t.Fatalf("nothing saved yet: ok=%v err=%v", ok, err)
	}
	want := ChoiceOf(DPS{Name: "dps1", ResourceGroup: "rg", SubscriptionID: "sub"}, "tenant", "login")
	if err := SaveChoice(dir, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := LoadChoice(dir)
	if err != nil || !ok || got != want {
		t.Fatalf("got %+v ok=%v err=%v, want %+v", got, ok, err, want)
	}
	fi, err := os.Stat(filepath.Join(dir, ChoiceFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if q := got.Query(); q != (Query{Name: "dps1", ResourceGroup: "rg", Subscription: "sub"}) {
		t.Errorf("query %+v", q)
	}
	os.WriteFile(filepath.Join(dir, ChoiceFile), []byte("{torn"), 0o600)
	if _, _, err := LoadChoice(dir); err == nil || !strings.Contains(err.Error(), "--dps") {
		t.Errorf("a torn file: %v, want a message saying how to choose again", err)
	}
}
