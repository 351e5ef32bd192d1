package dps

import "testing"

func TestParseTwinCollectionKeepsNumbersAndRejectsNonObjects(t *testing.T) {
	c, err := ParseTwinCollection(`{"big":12345678901234567890,"f":1.50}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Compact(); got != `{"big":12345678901234567890,"f":1.50}` {
		t.Fatalf("Compact = %s, numbers not kept exact", got)
	}
	for _, bad := range []string{``, `null`, `[1]`, `"x"`, `{} {}`, `{"a":`} {
		if _, err := ParseTwinCollection(bad); err == nil {
			t.Errorf("ParseTwinCollection(%q) = nil error", bad)
		}
	}
}

func TestCompactDropsVersionAndMetadata(t *testing.T) {
	c := TwinCollection{"$version": 3, "$metadata": map[string]any{}, "a": 1}
	if got := c.Compact(); got != `{"a":1}` {
		t.Fatalf("Compact = %s", got)
	}
	if _, ok := c["$version"]; !ok {
		t.Fatal("Compact changed the collection")
	}
	if got := (TwinCollection{"$version": 3}).Compact(); got != "{}" {
		t.Fatalf("Compact of metadata only = %s, want {}", got)
	}
}
