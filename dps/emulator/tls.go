package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names of the TLS material in the data dir.
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
)

// authority is the emulator's CA. It is generated once per data dir and kept,
// so a client that trusts ca.pem keeps trusting the emulator across restarts.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// loadOrCreateCA reads the CA from dir, or makes one when there is none.
func loadOrCreateCA(dir string) (*authority, error) {
	certPEM, certErr := os.ReadFile(filepath.Join(dir, caCertFile))
	keyPEM, keyErr := os.ReadFile(filepath.Join(dir, caKeyFile))
	if errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist) {
		return createCA(dir)
	}
	if certErr != nil {
		return nil, fmt.Errorf("read the emulator CA: %w", certErr)
	}
	if keyErr != nil {
		return nil, fmt.Errorf("read the emulator CA key: %w", keyErr)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("the emulator CA in %s is not PEM; delete %s and %s to make a new one", dir, caCertFile, caKeyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", caCertFile, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s (the key is not shown): invalid EC private key", caKeyFile)
	}
	return &authority{cert: cert, certPEM: certPEM, key: key}, nil
}

func createCA(dir string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "dpsconsole emulator CA", Organization: []string{"dpsconsole"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Key first: a cert without its key would make the next start fail.
	if err := writeFileAtomic(filepath.Join(dir, caKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, caCertFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	return &authority{cert: cert, certPEM: certPEM, key: key}, nil
}

// issueLeaf makes the server certificate for this start. It covers localhost,
// the loopback addresses and every listener host, so hubs on their own
// loopback addresses verify too. The key never leaves memory.
func (a *authority) issueLeaf(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"dpsconsole emulator"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		addSAN(tmpl, h)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	// The leaf alone: clients trust the CA itself (it is a root, which a
	// chain may leave out, RFC 8446 §4.4.2), and sending it too made every
	// Go client check two more signatures a handshake (the leaf against the
	// sent copy, and the copy's own).
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// addSAN adds a listener host: an IP (every interface address when it is the
// unspecified address) or a DNS name.
func addSAN(tmpl *x509.Certificate, host string) {
	ip := net.ParseIP(host)
	switch {
	case host == "":
		addAllInterfaceIPs(tmpl)
	case ip == nil:
		if !containsString(tmpl.DNSNames, host) {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	case ip.IsUnspecified():
		addAllInterfaceIPs(tmpl)
	default:
		addIP(tmpl, ip)
	}
}

func addAllInterfaceIPs(tmpl *x509.Certificate) {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			addIP(tmpl, n.IP)
		}
	}
	if h, err := os.Hostname(); err == nil && !containsString(tmpl.DNSNames, h) {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
}

func addIP(tmpl *x509.Certificate, ip net.IP) {
	for _, have := range tmpl.IPAddresses {
		if have.Equal(ip) {
			return
		}
	}
	tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves a half-written file behind.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
