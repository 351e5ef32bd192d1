package keys

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The §5.2 Node-style token, whose parameters are reordered below.
const (
	nodeSr  = "0ne00000A0A/registrations/" + tutorialRegID
	nodeSig = "hUOH8hSLSay+bfE5WjQhRmpIvWZdSog5Tlv8EyKqBg4="
)

func TestParseSASAnyOrder(t *testing.T) {
	parts := []string{"sr=" + nodeSr, "sig=" + url.QueryEscape(nodeSig), "se=1700000000", "skn=registration"}
	dev := mustKey(t, tutorialDevKey)
	for _, order := range [][]int{{0, 1, 2, 3}, {0, 1, 3, 2}, {1, 2, 3, 0}, {3, 2, 1, 0}, {2, 0, 3, 1}} {
		var ps []string
		for _, i := range order {
			ps = append(ps, parts[i])
		}
		tok := "SharedAccessSignature " + strings.Join(ps, "&")
		sas, err := ParseSAS(tok)
		if err != nil {
			t.Fatalf("%s: %v", tok, err)
		}
		if sas.KeyName != "registration" || sas.RawResource != nodeSr || sas.Resource != nodeSr || sas.RawExpiry != "1700000000" || !sas.Expiry.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("%s: parsed %+v", tok, sas)
		}
		if err := sas.Verify(dev, nodeSr, time.Unix(1690000000, 0)); err != nil {
			t.Errorf("%s: %v", tok, err)
		}
	}
}

func TestParseSASErrors(t *testing.T) {
	sig := "sig=" + url.QueryEscape(nodeSig)
	for _, tc := range []struct{ tok, reason string }{
		{"", `start with "SharedAccessSignature "`},
		{"sr=a&" + sig + "&se=1", `start with "SharedAccessSignature "`},
		{"SharedAccessSignature " + sig + "&se=1", "sr is missing"},
		{"SharedAccessSignature sr=a&se=1", "sig is missing"},
		{"SharedAccessSignature sr=a&" + sig, "se is missing"},
		{"SharedAccessSignature sr=a&sr=b&" + sig + "&se=1", "sr appears twice"},
		{"SharedAccessSignature sr=a&" + sig + "&" + sig + "&se=1", "sig appears twice"},
		{"SharedAccessSignature sr=a&" + sig + "&se=1&se=2", "se appears twice"},
		{"SharedAccessSignature sr=a&" + sig + "&se=1&skn=x&skn=y", "skn appears twice"},
		{"SharedAccessSignature sr=&" + sig + "&se=1", "sr is empty"},
		{"SharedAccessSignature sr=%zz&" + sig + "&se=1", "sr is not valid URL encoding"},
		{"SharedAccessSignature sr=a&sig=%zz&se=1", "sig is not valid URL encoding"},
		{"SharedAccessSignature sr=a&sig=bm90IGEgc2hhMjU2&se=1", "not a base64 HMAC-SHA256"},
		{"SharedAccessSignature sr=a&sig=***&se=1", "not a base64 HMAC-SHA256"},
		{"SharedAccessSignature sr=a&" + sig + "&se=soon", "se must be"},
		{"SharedAccessSignature sr=a&" + sig + "&se=-5", "se must be"},
		{"SharedAccessSignature sr=a&" + sig + "&se=9223372036854775807", "se is too large to be a time"},
		{"SharedAccessSignature sr=a&" + sig + "&se=99999999999999999999", "se is too large to be a time"},
		{"SharedAccessSignature sr=a&" + sig + "&se=253402300800", "9999-12-31T23:59:59Z"},
		{"SharedAccessSignature sr=a&" + sig + "&se=1&skn=%zz", "skn is not valid"},
		{"SharedAccessSignature sr=a&hUOH8hSLSay&se=1", "parameter 2 has no '='"},
	} {
		_, err := ParseSAS(tc.tok)
		var se *SASError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%q: %v, want %q", tc.tok, err, tc.reason)
		}
		if err != nil && strings.Contains(err.Error(), "hUOH8") {
			t.Errorf("%q: the error repeats the signature: %v", tc.tok, err)
		}
	}
	// The last second of 9999 is still a time.
	if _, err := ParseSAS("SharedAccessSignature sr=a&" + sig + "&se=253402300799"); err != nil {
		t.Errorf("se of 9999-12-31T23:59:59Z: %v", err)
	}
	// Unknown parameters are tolerated, and a '+' left unencoded in sig is a '+'.
	tok := "SharedAccessSignature sr=" + nodeSr + "&sig=" + nodeSig + "&se=1700000000&x=y&skn=registration"
	sas, err := ParseSAS(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !sas.SignatureMatches(mustKey(t, tutorialDevKey)) {
		t.Error("raw '+' in sig was not read as '+'")
	}
}

func TestVerifyFailures(t *testing.T) {
	dev := mustKey(t, tutorialDevKey)
	now := time.Unix(1690000000, 0)
	tok := SignSAS(nodeSr, dev, "registration", time.Unix(1700000000, 0))
	sas, err := ParseSAS(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := sas.Verify(mustKey(t, tutorialGroupKey), nodeSr, now); !errors.Is(err, ErrSASSignature) {
		t.Errorf("wrong key: %v", err)
	}
	if sas.SignatureMatches(mustKey(t, tutorialGroupKey)) || !sas.SignatureMatches(dev) {
		t.Error("SignatureMatches")
	}
	err = sas.Verify(dev, "0ne00000A0A/registrations/other", now)
	if !errors.Is(err, ErrSASResource) {
		t.Errorf("other resource: %v", err)
	}
	if err := sas.Verify(dev, nodeSr, time.Unix(1700000001, 0)); !errors.Is(err, ErrSASExpired) {
		t.Errorf("expired: %v", err)
	}
	// A tampered se or sr breaks the signature: both are signed as sent.
	for _, bad := range []string{strings.Replace(tok, "se=1700000000", "se=1800000000", 1), strings.Replace(tok, "%2Fregistrations", "/registrations", 1)} {
		s, err := ParseSAS(bad)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(dev, nodeSr, now); !errors.Is(err, ErrSASSignature) {
			t.Errorf("tampered %q: %v", bad, err)
		}
	}
	if strings.Contains(err.Error(), "sig") || strings.Contains(err.Error(), dev.Base64()[:8]) {
		t.Errorf("error reveals secrets: %v", err)
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		sr, resource string
		want         bool
	}{
		{"host", "host", true},
		{"HOST", "host", true},
		{"host", "host/devices/d", true},
		{"host/", "host/devices/d", true},
		{"host/devices", "host/devices/d", true},
		{"host/dev", "host/devices/d", false}, // prefix by segment, not by character
		{"host/devices/d", "host", false},
		{"host2", "host", false},
		{"0ne00000a0a/registrations/Dev", "0ne00000A0A/registrations/dev", true},
	} {
		if got := (SAS{Resource: tc.sr}).Covers(tc.resource); got != tc.want {
			t.Errorf("sr %q covers %q = %v, want %v", tc.sr, tc.resource, got, tc.want)
		}
	}
}

func TestSignSASRoundTrip(t *testing.T) {
	k := GenerateKey()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	for _, tc := range []struct{ resource, policy string }{
		{"mydps.azure-devices-provisioning.net", "provisioningserviceowner"},
		{"0ne00000A0A/registrations/dev-1", "registration"},
		{"hub.azure-devices.net/devices/dev 1+x", ""}, // characters URL encoding must carry
		{"host", "policy with space&amp"},
	} {
		tok := SignSAS(tc.resource, k, tc.policy, exp)
		sas, err := ParseSAS(tok)
		if err != nil {
			t.Fatalf("%s: %v", tok, err)
		}
		if sas.Resource != tc.resource || sas.KeyName != tc.policy || !sas.Expiry.Equal(exp) {
			t.Errorf("%s: round trip gave %+v", tok, sas)
		}
		if err := sas.Verify(k, tc.resource, time.Now()); err != nil {
			t.Errorf("%s: %v", tok, err)
		}
		if tc.policy == "" && strings.Contains(tok, "skn=") {
			t.Errorf("%s: skn without a policy", tok)
		}
	}
}

// A SASSigner's token is SignSAS's for the same expiry, whichever second
// was asked before, and concurrent callers agree.
func TestSASSignerIsSignSAS(t *testing.T) {
	k := GenerateKey()
	s := NewSASSigner("hub.azure-devices.net/devices/dev-1", k, "")
	base := time.Unix(1700000000, 0)
	for _, off := range []time.Duration{0, 300 * time.Millisecond, time.Second, 1500 * time.Millisecond, 0, time.Hour} {
		exp := base.Add(off)
		if got, want := s.Sign(exp), SignSAS("hub.azure-devices.net/devices/dev-1", k, "", exp); got != want {
			t.Fatalf("expiry %v: %q, want %q", exp, got, want)
		}
	}
	want := SignSAS("hub.azure-devices.net/devices/dev-1", k, "", base)
	done := make(chan string)
	for range 8 {
		go func() { done <- s.Sign(base.Add(999 * time.Millisecond)) }()
	}
	for range 8 {
		if got := <-done; got != want {
			t.Fatalf("concurrent Sign: %q, want %q", got, want)
		}
	}
}
