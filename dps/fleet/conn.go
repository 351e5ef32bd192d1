package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// DeviceTLS is the TLS of every simulated device's connection: what base
// trusts (nil: the system roots), offering the classic X25519 key share.
// Go 1.26's default adds the hybrid X25519MLKEM768, which the device SDKs'
// TLS stacks do not offer (Node 20's OpenSSL 3.0 sends an X25519 key share
// and offers no ML-KEM; OpenSSL, which the C SDK uses on Linux, offers it
// only from 3.5) and which costs both sides a post-quantum key exchange per
// handshake: a simulated device should cost the service what a real one
// does. Each device starts without a session
// to resume, as a device connecting for the first time does.
func DeviceTLS(base *tls.Config) *tls.Config {
	c := &tls.Config{}
	if base != nil {
		c = base.Clone()
	}
	c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	c.ClientSessionCache = nil
	c.NextProtos = nil // base may offer h2, which the devices' HTTP/1.1 does not speak
	return c
}

// deviceDialer opens the devices' HTTPS connections. Every device checks
// the server's certificate, as a real one does, but the fleet checks the
// signatures of a certificate's chain once for all its devices: a real
// fleet pays that on the devices' CPUs, a simulated one would pay it
// thousands of times on the one machine that also runs the load. The
// handshake still proves the server holds the certificate's key (its
// signature is checked on every connection), and every connection checks
// the certificate names its host and is within its validity.
type deviceDialer struct {
	tls    *tls.Config
	dialer net.Dialer

	mu       sync.Mutex
	verified map[string]bool // leaf certificates (DER) whose chain verified
}

func newDeviceDialer(c *tls.Config) *deviceDialer {
	return &deviceDialer{tls: c, dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}, verified: map[string]bool{}}
}

// client is one HTTPS device's client: a transport of its own, so its own
// TLS connection, kept alive from its register to its last poll, and
// HTTP/1.1, which device SDKs speak to DPS.
func (d *deviceDialer) client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = d.tls
	tr.ForceAttemptHTTP2 = false
	tr.MaxIdleConnsPerHost = 1
	if d.checks() {
		tr.DialTLSContext = d.dialTLS // through a proxy the transport's own TLS runs
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// checks reports whether the fleet checks certificates itself: not when
// the caller's TLS settings skip the check or check in their own way.
func (d *deviceDialer) checks() bool {
	return !d.tls.InsecureSkipVerify && d.tls.VerifyConnection == nil && d.tls.VerifyPeerCertificate == nil
}

// tlsFor is the TLS of one connection to addr (host[:port]), its
// certificate checked by check: for the MQTT connections, which the
// device client dials itself.
func (d *deviceDialer) tlsFor(addr string) *tls.Config {
	if !d.checks() {
		return d.tls
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	c := d.tls.Clone()
	if c.ServerName == "" {
		c.ServerName = host
	}
	name := c.ServerName
	c.InsecureSkipVerify = true // checked by VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error { return d.check(cs, name) }
	return c
}

func (d *deviceDialer) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	c := d.tlsFor(addr)
	raw, err := d.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, c)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// check is the certificate check of crypto/tls, with the chain's
// signatures verified once per leaf certificate.
func (d *deviceDialer) check(cs tls.ConnectionState, host string) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	leaf, now := certs[0], time.Now()
	d.mu.Lock()
	seen := d.verified[string(leaf.Raw)]
	d.mu.Unlock()
	if seen && !now.Before(leaf.NotBefore) && !now.After(leaf.NotAfter) {
		if err := leaf.VerifyHostname(host); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
		}
		return nil
	}
	opts := x509.VerifyOptions{Roots: d.tls.RootCAs, DNSName: host, Intermediates: x509.NewCertPool(), CurrentTime: now}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	d.mu.Lock()
	d.verified[string(leaf.Raw)] = true
	d.mu.Unlock()
	return nil
}
