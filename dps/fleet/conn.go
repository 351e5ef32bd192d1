package fleet

import (
	"crypto/tls"
	"net/http"
	"time"
)

// DeviceTLS is the TLS of every simulated device's connection: what base
// trusts (nil: the system roots), offering the classic X25519 key share.
// Go's default adds the hybrid X25519MLKEM768, which the TLS stacks of
// devices do not offer yet (the Azure IoT C SDK's OpenSSL 1.1/3.0, mbedTLS
// and Schannel; Node 20's OpenSSL 3.0) and which costs both sides a
// post-quantum key exchange per handshake: a simulated device should cost
// the service what a real one does. Each device starts without a session
// to resume, as a device connecting for the first time does.
func DeviceTLS(base *tls.Config) *tls.Config {
	c := &tls.Config{}
	if base != nil {
		c = base.Clone()
	}
	c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	c.ClientSessionCache = nil
	c.NextProtos = nil // base may offer h2, which NewDeviceHTTPClient does not speak
	return c
}

// NewDeviceHTTPClient is one HTTPS device's client: a transport of its own,
// so its own TLS connection, kept alive from its register to its last
// poll, and HTTP/1.1, which device SDKs speak to DPS.
func NewDeviceHTTPClient(tlsConfig *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	tr.ForceAttemptHTTP2 = false
	tr.MaxIdleConnsPerHost = 1
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
