package keys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Run each for a while, e.g. go test ./keys -run '^$' -fuzz FuzzParseKey -fuzztime 60s.
// Inputs they found are kept in testdata/fuzz and run by plain go test.

var regIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{0,127}[A-Za-z0-9-]$`)

func FuzzValidateRegistrationID(f *testing.F) {
	for _, s := range []string{tutorialRegID, "", "a", "a.", "dev 1", "dév", strings.Repeat("a", 129), "\xff", "A-B_C:D.E-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateRegistrationID(id)
		// (The length test first: the pattern's NFA is slow on long inputs.)
		if (err == nil) != (len(id) <= MaxRegistrationIDLength && regIDPattern.MatchString(id)) {
			t.Fatalf("%q: err %v disagrees with the rule", id, err)
		}
		upper, err2 := scanRegistrationID([]byte(id))
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("%q: string and byte validation disagree: %v / %v", id, err, err2)
		}
		if err == nil && upper != (RegistrationIDWarning(id) != "") {
			t.Fatalf("%q: upper-case scan and warning disagree", id)
		}
		if re, ok := err.(*RegistrationIDError); ok && (re.Pos < 0 || re.Pos > len(id) || re.Rule == "") {
			t.Fatalf("%q: bad error %#v", id, re)
		}
	})
}

func isBase64Text(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isBase64Char(s[i]) {
			return false
		}
	}
	return true
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{tutorialGroupKey, testKey, "", " ", "AAAA", tutorialGroupKey + "\n", "AAAA=AAA" + testKey, strings.TrimRight(testKey, "=")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		trimmed := strings.TrimSpace(s)
		if err != nil {
			if len(trimmed) >= 16 && isBase64Text(trimmed) && strings.Contains(err.Error(), trimmed) {
				t.Fatalf("the error repeats the key: %v", err)
			}
			return
		}
		if n := len(k.Bytes()); n < MinKeyBytes || n > MaxKeyBytes {
			t.Fatalf("%q: accepted %d bytes", s, n)
		}
		if k.Base64() != trimmed { // strict: only canonical base64 is accepted
			t.Fatalf("%q: accepted, but it is not canonical (%q)", s, k.Base64())
		}
	})
}

// FuzzDeriver compares the Deriver's own HMAC padding with crypto/hmac for
// any key (long keys are hashed first) and any message an ID can be.
func FuzzDeriver(f *testing.F) {
	f.Add([]byte(tutorialGroupKey), []byte(tutorialRegID))
	f.Add(make([]byte, 100), make([]byte, 56))
	f.Fuzz(func(t *testing.T, key, msg []byte) {
		if len(key) == 0 || len(msg) > MaxRegistrationIDLength {
			return
		}
		d, err := NewDeriver(KeyFromBytes(key))
		if err != nil || (d.fast != nil) != (sha256Digest != nil) {
			t.Fatalf("NewDeriver: %v, fast path %v", err, d.fast != nil)
		}
		d.derive(msg)
		ref := hmac.New(sha256.New, key)
		ref.Write(msg)
		if want := ref.Sum(nil); !bytes.Equal(d.sum[:], want) {
			t.Fatalf("key %x msg %q: %x, want %x", key, msg, d.sum, want)
		}
	})
}

func FuzzParseSAS(f *testing.F) {
	f.Add("SharedAccessSignature sr=" + nodeSr + "&sig=hUOH8hSLSay%2BbfE5WjQhRmpIvWZdSog5Tlv8EyKqBg4%3D&skn=registration&se=1700000000")
	f.Add("SharedAccessSignature sr=a&sig=x&se=1&sr=b")
	f.Add("SharedAccessSignature &&&=")
	f.Fuzz(func(t *testing.T, tok string) {
		sas, err := ParseSAS(tok)
		if err != nil {
			return
		}
		if sas.Resource == "" || sas.Expiry.Unix() < 0 || len(sas.signature) != 32 {
			t.Fatalf("%q: accepted an incomplete token %+v", tok, sas)
		}
		dev := mustKey(t, tutorialDevKey)
		if (sas.Verify(dev, sas.Resource, time.Unix(0, 0)) == nil) != sas.SignatureMatches(dev) {
			t.Fatalf("%q: Verify and SignatureMatches disagree", tok)
		}
		if !sas.Covers(sas.Resource) {
			t.Fatalf("%q: does not cover its own resource", tok)
		}
	})
}

func FuzzSASRoundTrip(f *testing.F) {
	f.Add("0ne00000A0A/registrations/dev", "registration", []byte("0123456789abcdef"), int64(1700000000))
	f.Add("hub/devices/a b+c%d&e=f", "", []byte("0123456789abcdef0123456789abcdef"), int64(0))
	f.Fuzz(func(t *testing.T, resource, policy string, key []byte, se int64) {
		if resource == "" || se < 0 || se > 1<<40 || len(key) == 0 {
			return
		}
		k := KeyFromBytes(key)
		tok := SignSAS(resource, k, policy, time.Unix(se, 0))
		sas, err := ParseSAS(tok)
		if err != nil {
			t.Fatalf("%q: own token does not parse: %v", tok, err)
		}
		if sas.Resource != resource || sas.KeyName != policy || sas.Expiry.Unix() != se {
			t.Fatalf("%q: round trip gave %+v", tok, sas)
		}
		if err := sas.Verify(k, resource, time.Unix(se-1, 0)); err != nil {
			t.Fatalf("%q: own token does not verify: %v", tok, err)
		}
	})
}

func FuzzParseConnectionString(f *testing.F) {
	for _, s := range []string{dpsConn, hubConn, devConn, emuHost, "", ";;", "HostName=h;" + testKey, dpsConn + ";HostName=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConnectionString(s)
		if err != nil {
			// Whatever value sits in a SharedAccessKey part must not be quoted.
			for part := range strings.SplitSeq(s, ";") {
				if _, v, ok := strings.Cut(part, "="); ok {
					v = strings.TrimSpace(v)
					if len(v) >= 16 && isBase64Text(v) && strings.Contains(err.Error(), v) {
						t.Fatalf("the error repeats a value: %v", err)
					}
				}
			}
			return
		}
		again, err := ParseConnectionString(c.Encode())
		if err != nil || again.Encode() != c.Encode() {
			t.Fatalf("%q: Encode %q does not round-trip: %v", s, c.Encode(), err)
		}
		// (Other parts may contain the same text as the key, so look at the key's own part.)
		if strings.Contains(c.String(), "SharedAccessKey="+c.SharedAccessKey.Base64()) || !strings.HasSuffix(c.String(), "SharedAccessKey="+Mask) {
			t.Fatalf("%q: String does not mask the key: %q", s, c.String())
		}
	})
}
