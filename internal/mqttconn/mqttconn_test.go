package mqttconn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEndpointDefaultsToTheSDKPorts(t *testing.T) {
	for _, c := range []struct {
		tr         Transport
		host, want string
	}{
		{MQTT, "global.azure-devices-provisioning.net", "mqtts://global.azure-devices-provisioning.net:8883"},
		{MQTT, "127.0.0.1:40123", "mqtts://127.0.0.1:40123"},
		{WebSockets, "myhub.azure-devices.net", "wss://myhub.azure-devices.net:443/$iothub/websocket"},
		{WebSockets, "127.0.0.1:8443", "wss://127.0.0.1:8443/$iothub/websocket"},
	} {
		if got := (Options{Transport: c.tr, Host: c.host}).Endpoint(); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.tr, c.host, got, c.want)
		}
	}
}

func TestRefusedConnectSaysWhy(t *testing.T) {
	e := &RefusedError{Code: 5, Endpoint: "mqtts://h:8883"}
	if e.Error() != "mqtts://h:8883 refused the MQTT connection (CONNACK 5, not authorized)" || !e.NotAuthorized() {
		t.Fatalf("%q, not authorized %v", e, e.NotAuthorized())
	}
	if (&RefusedError{Code: 3}).NotAuthorized() {
		t.Error("server unavailable is not a key problem")
	}
}

func TestDialRefusesHTTPSAndNamesUnreachableEndpoints(t *testing.T) {
	if _, err := Dial(context.Background(), Options{Transport: HTTPS}); err == nil {
		t.Error("HTTPS is not an MQTT transport")
	}
	_, err := Dial(context.Background(), Options{Transport: MQTT, Host: "127.0.0.1:1", ClientID: "d"})
	var refused *RefusedError
	if err == nil || errors.As(err, &refused) || !strings.Contains(err.Error(), "cannot connect to mqtts://127.0.0.1:1") ||
		!strings.Contains(err.Error(), "nothing listens there") {
		t.Fatalf("err = %v", err)
	}
	// An HTTPS server without the WebSocket endpoint.
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig
	_, err = Dial(context.Background(), Options{Transport: WebSockets, Host: strings.TrimPrefix(srv.URL, "https://"), ClientID: "d", TLS: tlsConf})
	if err == nil || !strings.Contains(err.Error(), "did not upgrade to MQTT over WebSockets") {
		t.Fatalf("err = %v", err)
	}
}

func TestDialSaysWhichCertificateIsNotTrusted(t *testing.T) {
	srv := httptest.NewTLSServer(nil) // a certificate no system root signed
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	_, err := Dial(context.Background(), Options{Transport: MQTT, Host: host, ClientID: "d"})
	if err == nil || !strings.Contains(err.Error(), "the server certificate of mqtts://"+host+" is not trusted") || !strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("err = %v", err)
	}
}
