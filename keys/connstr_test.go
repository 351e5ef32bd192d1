package keys

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const (
	testKey   = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	dpsConn   = "HostName=contoso-dps.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=" + testKey
	hubConn   = "HostName=contoso-hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + testKey
	devConn   = "HostName=contoso-hub.azure-devices.net;DeviceId=sn-007;SharedAccessKey=" + testKey
	emuHost   = "HostName=127.0.0.1:8443;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=" + testKey
	keyPrefix = "AAECAwQF"
)

func TestParseConnectionStringForms(t *testing.T) {
	for _, tc := range []struct {
		in     string
		device bool
		host   string
	}{
		{dpsConn, false, "contoso-dps.azure-devices-provisioning.net"},
		{hubConn, false, "contoso-hub.azure-devices.net"},
		{devConn, true, "contoso-hub.azure-devices.net"},
		{emuHost, false, "127.0.0.1:8443"},
		{" sharedaccesskey=" + testKey + " ; HOSTNAME = h ;sharedAccessKeyName=p;", false, "h"}, // any order, case, spacing, trailing ';'
		{devConn + ";ModuleId=m;GatewayHostName=edge", true, "contoso-hub.azure-devices.net"},
	} {
		c, err := ParseConnectionString(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if c.IsDevice() != tc.device || c.HostName != tc.host || c.SharedAccessKey.Base64() != testKey {
			t.Errorf("%q: parsed %#v", tc.in, c)
		}
		again, err := ParseConnectionString(c.Encode())
		if err != nil || again.Encode() != c.Encode() {
			t.Errorf("%q: Encode round trip: %q, %v", tc.in, c.Encode(), err)
		}
	}
	if c, _ := ParseConnectionString(dpsConn); c.Encode() != dpsConn {
		t.Errorf("Encode = %q, want the input", c.Encode())
	}
	if _, err := ParseServiceConnectionString(dpsConn); err != nil {
		t.Error(err)
	}
	if _, err := ParseDeviceConnectionString(devConn); err != nil {
		t.Error(err)
	}
	if _, err := ParseServiceConnectionString(devConn); err == nil || !strings.Contains(err.Error(), "device connection string") {
		t.Errorf("service parser took a device string: %v", err)
	}
	if _, err := ParseDeviceConnectionString(hubConn); err == nil || !strings.Contains(err.Error(), "service connection string") {
		t.Errorf("device parser took a service string: %v", err)
	}
}

func TestParseConnectionStringErrors(t *testing.T) {
	for _, tc := range []struct{ in, reason string }{
		{"", "HostName is missing"},
		{"SharedAccessKeyName=p;SharedAccessKey=" + testKey, "HostName is missing"},
		{"HostName=h;SharedAccessKeyName=p", "SharedAccessKey is missing"},
		{"HostName=h;SharedAccessKey=" + testKey, "needs SharedAccessKeyName"},
		{dpsConn + ";DeviceId=d", "both SharedAccessKeyName and DeviceId"},
		{"HostName=h;SharedAccessKeyName=p;ModuleId=m;SharedAccessKey=" + testKey, "ModuleId needs a DeviceId"},
		{dpsConn + ";HostName=other", "HostName appears twice"},
		{dpsConn + ";sharedaccesskey=" + testKey, "SharedAccessKey appears twice"},
		{"HostName=;SharedAccessKeyName=p;SharedAccessKey=" + testKey, "HostName is empty"},
		{"HostName=https://h/;SharedAccessKeyName=p;SharedAccessKey=" + testKey, "not a URL"},
		{"HostName=h;SharedAccessKeyName=p;SharedAccessKey=" + testKey[:22], "SharedAccessKey: base64 length 22"},
		{"HostName=h;SharedAccessKeyName=p;SharedAccessKey=" + testKey[:10] + " " + testKey[11:], "SharedAccessKey: character 11"},
		{"HostName=h;SharedAccessKeyName=p;SharedAccessSignature=SharedAccessSignature sr=h&sig=x&se=1", "give the SharedAccessKey instead"},
		{"HostName=h;Endpoint=sb://x;SharedAccessKeyName=p;SharedAccessKey=" + testKey, "part 2 has an unknown name"},
		{"HostName=h;" + testKey, "part 2 has an unknown name"}, // a pasted key: never quoted
		{"HostName=h;" + strings.TrimRight(testKey, "="), "part 2 has no '='"},
	} {
		_, err := ParseConnectionString(tc.in)
		var ce *ConnectionStringError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.reason)
			continue
		}
		if strings.Contains(err.Error(), keyPrefix) {
			t.Errorf("%q: the error reveals the key: %v", tc.in, err)
		}
	}
}

func TestConnectionStringMasked(t *testing.T) {
	c, err := ParseConnectionString(dpsConn)
	if err != nil {
		t.Fatal(err)
	}
	want := "HostName=contoso-dps.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=" + Mask
	if c.String() != want {
		t.Errorf("String = %q", c.String())
	}
	type holder struct {
		Conn ConnectionString
		conn ConnectionString
	}
	h := holder{c, c}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{c, &c, h, &h} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, keyPrefix) || strings.Contains(s, "[0 1 2 3") || strings.Contains(s, "000102") {
				t.Errorf("%s of %T reveals the key: %s", verb, v, s)
			}
		}
	}
	if err := fmt.Errorf("connecting with %v: failed", c); strings.Contains(err.Error(), keyPrefix) {
		t.Errorf("error reveals the key: %v", err)
	}
}
