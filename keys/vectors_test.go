package keys

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	tutorialGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	tutorialRegID    = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	tutorialDevKey   = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
)

func mustKey(t testing.TB, s string) Key {
	t.Helper()
	k, err := ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestDeriveTutorialVectors(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{tutorialRegID, tutorialDevKey},
		{strings.ToUpper(tutorialRegID), "9GWVnYuoOLXlHc346XjhLRb9pKgIOrKSwxDRSOgnvXo="}, // §5.1: upper case derives another key
	} {
		got, err := DeriveDeviceKeyString(tutorialGroupKey, tc.id)
		if err != nil || got != tc.want {
			t.Errorf("derive(%s) = %q, %v; want %q", tc.id, got, err, tc.want)
		}
	}
}

func TestServiceSASVector(t *testing.T) { // dps-protocol.md §2.3
	cs, err := ParseServiceConnectionString("HostName=contoso-dps.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	got := SignSAS(cs.HostName, cs.SharedAccessKey, cs.SharedAccessKeyName, time.Unix(1700000000, 0))
	want := "SharedAccessSignature sr=contoso-dps.azure-devices-provisioning.net&sig=gIyOOhl36d3QekdOPD1lo9j%2BE2sblXhP8C%2FCxCwv7UU%3D&se=1700000000&skn=provisioningserviceowner"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	node := "SharedAccessSignature sr=contoso-dps.azure-devices-provisioning.net&sig=gIyOOhl36d3QekdOPD1lo9j%2BE2sblXhP8C%2FCxCwv7UU%3D&skn=provisioningserviceowner&se=1700000000"
	for _, tok := range []string{want, node} {
		sas, err := ParseSAS(tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := sas.Verify(cs.SharedAccessKey, "CONTOSO-dps.azure-devices-provisioning.net", time.Unix(1699999999, 0)); err != nil {
			t.Errorf("verify %q: %v", tok, err)
		}
		if sas.KeyName != "provisioningserviceowner" {
			t.Errorf("skn = %q", sas.KeyName)
		}
	}
}

func TestDeviceSASVectors(t *testing.T) { // dps-protocol.md §5.2
	dev := mustKey(t, tutorialDevKey)
	const rid = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	resource := "0ne00000A0A/registrations/" + rid
	for _, tc := range []struct{ sr, sig string }{
		{"0ne00000A0A/registrations/" + rid, "hUOH8hSLSay+bfE5WjQhRmpIvWZdSog5Tlv8EyKqBg4="},
		{"0ne00000A0A%2Fregistrations%2F" + rid, "t6/8JHWQuQgM9mXdYf/uIqa3dKECOEk9Rr4WrFV19q0="},
		{"0ne00000A0A%2fregistrations%2f" + rid, "d0v1ROtrJfDl1lL+6Gm6mCyZUBsvFsT3HgNEOWfYmE0="},
		{"0ne00000a0a%2fregistrations%2f" + rid, "x++X8RfqaOzoQUMxcfCDre5bLB7s6DT3Zsx5BsgrRho="},
	} {
		tok := "SharedAccessSignature sr=" + tc.sr + "&sig=" + url.QueryEscape(tc.sig) + "&skn=registration&se=1700000000"
		sas, err := ParseSAS(tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := sas.Verify(dev, resource, time.Unix(1600000000, 0)); err != nil {
			t.Errorf("sr %s: %v", tc.sr, err)
		}
		if err := sas.Verify(dev, resource, time.Unix(1700000000, 0)); !errors.Is(err, ErrSASExpired) {
			t.Errorf("sr %s at expiry: %v, want expired", tc.sr, err)
		}
	}
	got := SignSAS(resource, dev, "registration", time.Unix(1700000000, 0))
	want := "SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=t6%2F8JHWQuQgM9mXdYf%2FuIqa3dKECOEk9Rr4WrFV19q0%3D&se=1700000000&skn=registration"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestHubSASVectors(t *testing.T) { // dps-protocol.md §8
	doc := mustKey(t, "18RQk/hOPJR9EbsJlk2j8WA6vWaj/yi+oaYg7zmxfQNdOyMSu+SJ8O7TSlZhDJCYmn4rzEiVKIzNiVAWjLxrGA==")
	got := SignSAS("MyExampleHub.azure-devices.net/devices/my-symkey-device", doc, "", time.Unix(1663119026, 0))
	if !strings.Contains(got, "sig="+url.QueryEscape("f+wW8XOKeJOtiPc9Iwjc4OpExvPM7NlhM9qxN2a1aAM=")+"&") || strings.Contains(got, "skn") {
		t.Errorf("doc vector: %s", got)
	}
	dev := mustKey(t, tutorialDevKey)
	got = SignSAS("contoso-hub.azure-devices.net/devices/"+tutorialRegID, dev, "", time.Unix(1700000000, 0))
	if !strings.Contains(got, "sig="+url.QueryEscape("Yd2VYULBaZRg6WJWQXPe9PKEkSA36FzFSPqH6LOmYq0=")+"&") {
		t.Errorf("our vector: %s", got)
	}
	lower := "SharedAccessSignature sr=contoso-hub.azure-devices.net%2fdevices%2f" + tutorialRegID + "&sig=" + url.QueryEscape("UP1XqiYy/oos3rC+zIaDgCVYCvQVFJz0m5Fr0zroBiw=") + "&se=1700000000"
	sas, err := ParseSAS(lower)
	if err != nil {
		t.Fatal(err)
	}
	if err := sas.Verify(dev, "contoso-hub.azure-devices.net/devices/"+tutorialRegID, time.Unix(1, 0)); err != nil {
		t.Error(err)
	}
}
