package keys

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseKeyStrict(t *testing.T) {
	k16 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	k64 := base64.StdEncoding.EncodeToString(make([]byte, 64))
	for _, s := range []string{tutorialGroupKey, k16, k64, " \t" + tutorialGroupKey + "\r\n"} {
		if _, err := ParseKey(s); err != nil {
			t.Errorf("ParseKey(%q): %v", s, err)
		}
	}
	mid := len(tutorialGroupKey) / 2
	for _, tc := range []struct{ name, key, rule string }{
		{"empty", "", "empty"},
		{"blank", " \n", "empty"},
		// Each of these the az CLI drops silently and derives a wrong key.
		{"inner space", tutorialGroupKey[:mid] + " " + tutorialGroupKey[mid:], "character 45 "},
		{"inner newline", tutorialGroupKey[:mid] + "\n" + tutorialGroupKey[mid:], "character 45 "},
		{"quote", `"` + tutorialGroupKey + `"`, "character 1 "},
		{"url-safe -", strings.Replace(tutorialGroupKey, "/", "_", 1), "standard base64 alphabet"},
		{"non-ASCII", "é" + tutorialGroupKey[2:], "character 1 "},
		{"NUL", tutorialGroupKey[:4] + "\x00" + tutorialGroupKey[5:], "character 5 "},
		{"no padding", strings.TrimRight(tutorialGroupKey, "="), "multiple of 4"},
		{"truncated", tutorialGroupKey[:20], "decodes to 15 bytes"},
		{"padding inside", "AAAA=AAA" + tutorialGroupKey[8:], "padding"},
		{"stray bits", "AAAAAAAAAAAAAAAAAAAAAB==", "stray bits"},
		{"15 bytes", base64.StdEncoding.EncodeToString(make([]byte, 15)), "decodes to 15 bytes"},
		{"65 bytes", base64.StdEncoding.EncodeToString(make([]byte, 65)), "decodes to 65 bytes"},
	} {
		_, err := ParseKey(tc.key)
		var ke *KeyError
		if !errors.As(err, &ke) || !strings.Contains(err.Error(), tc.rule) {
			t.Errorf("%s: err = %v, want a KeyError mentioning %q", tc.name, err, tc.rule)
			continue
		}
		if len(tc.key) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tc.key)[4:12]) {
			t.Errorf("%s: the error echoes the key: %v", tc.name, err)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	k := mustKey(t, tutorialGroupKey)
	if k.Base64() != tutorialGroupKey || len(k.Bytes()) != 64 {
		t.Fatalf("round trip: %d bytes", len(k.Bytes()))
	}
	if !k.Equal(KeyFromBytes(k.Bytes())) || k.Equal(GenerateKey()) {
		t.Error("Equal")
	}
	if k.IsZero() || !(Key{}).IsZero() {
		t.Error("IsZero")
	}
	raw := []byte{1, 2, 3}
	c := KeyFromBytes(raw)
	raw[0] = 9
	if c.Bytes()[0] != 1 {
		t.Error("KeyFromBytes must copy")
	}
}

func TestGenerateKey(t *testing.T) {
	a, b := GenerateKey(), GenerateKey()
	if len(a.Bytes()) != 64 || a.Equal(b) {
		t.Fatal("GenerateKey: want 64 distinct random bytes")
	}
	if _, err := ParseKey(a.Base64()); err != nil || len(a.Base64()) != 88 {
		t.Fatalf("generated key does not parse: %v", err)
	}
}

// Every way a key can be printed or encoded by accident must mask it.
func TestKeyNeverPrinted(t *testing.T) {
	k := mustKey(t, tutorialGroupKey)
	secretParts := []string{tutorialGroupKey[:12], fmt.Sprint(k.Bytes()[:4]), fmt.Sprintf("%x", k.Bytes()[:4]), "242"} // 242 = 0xf2, the first byte
	type wrapper struct {
		Exported Key
		hidden   Key
	}
	w := wrapper{k, k}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out = append(out, fmt.Sprintf(verb, k), fmt.Sprintf(verb, w), fmt.Sprintf(verb, &w), fmt.Sprintf(verb, []Key{k}))
	}
	j, _ := json.Marshal(w)
	out = append(out, string(j), fmt.Sprint(fmt.Errorf("wrapped: %v", k)))
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("x", "key", k, "w", w)
	slog.New(slog.NewJSONHandler(&log, nil)).Info("x", "key", k)
	out = append(out, log.String())
	for _, s := range out {
		for _, p := range secretParts {
			if strings.Contains(s, p) {
				t.Errorf("printed form %q reveals the key (%q)", s, p)
			}
		}
	}
	if got := fmt.Sprint(k); got != Mask {
		t.Errorf("Sprint = %q, want the mask", got)
	}
	if got := fmt.Sprint(Key{}); got != "" {
		t.Errorf("zero key prints %q, want empty", got)
	}
}
