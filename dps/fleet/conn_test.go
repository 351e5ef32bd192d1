package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

// TestDeviceDialerChecksEveryConnection: the chain's signatures are checked
// once, but every connection still needs a certificate for its host, from
// a trusted root.
func TestDeviceDialerChecksEveryConnection(t *testing.T) {
	em, err := emulator.Start(t.Context(), emulator.Options{DataDir: t.TempDir(), Seed: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	addr := em.Env().DeviceEndpoint
	d := newDeviceDialer(DeviceTLS(&tls.Config{RootCAs: em.CertPool()}))
	var last tls.ConnectionState
	for range 2 {
		c, err := d.dialTLS(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		last = c.(*tls.Conn).ConnectionState()
		if last.CurveID != tls.X25519 || last.NegotiatedProtocol != "" {
			t.Errorf("key exchange %v, ALPN %q; want X25519 and HTTP/1.1", last.CurveID, last.NegotiatedProtocol)
		}
		c.Close()
	}
	if len(d.verified) != 1 {
		t.Errorf("%d leaves verified, want 1", len(d.verified))
	}
	var cv *tls.CertificateVerificationError
	if err := d.check(last, "dps.example.net"); !errors.As(err, &cv) {
		t.Errorf("a verified certificate for another host: %v", err)
	}
	stranger := newDeviceDialer(DeviceTLS(&tls.Config{RootCAs: x509.NewCertPool()}))
	if _, err := stranger.dialTLS(context.Background(), "tcp", addr); !errors.As(err, &cv) {
		t.Errorf("a server no root vouches for: %v", err)
	}
}
