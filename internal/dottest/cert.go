// Package dottest provides what tests need to stand in for DNS-over-TLS
// resolvers: a certificate authority generated in the test, leaf
// certificates for chosen names, and an in-process DoT server whose
// behaviour (answer, stay silent, answer slowly, answer wrongly) the test
// controls. It talks only to loopback.
package dottest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority made for one test.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	Pool *x509.CertPool // holds Cert, for a client's RootCAs
	PEM  []byte         // Cert, PEM-encoded
}

// NewCA generates a fresh CA, valid from an hour ago for a day.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	return NewCAFor(tb, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// NewCAFor generates a fresh CA valid from notBefore to notAfter: a test
// of how certificates' dates are judged chooses them.
func NewCAFor(tb testing.TB, notBefore, notAfter time.Time) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generating CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "dotproxy test CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("creating CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("parsing CA certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, Pool: pool,
		PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Leaf issues a server certificate for the given DNS names (IP literals
// become IP SANs), signed by ca.
func (ca *CA) Leaf(tb testing.TB, names ...string) tls.Certificate {
	tb.Helper()
	return issue(tb, ca.Cert, ca.Key, names, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// LeafFor is Leaf valid from notBefore to notAfter.
func (ca *CA) LeafFor(tb testing.TB, notBefore, notAfter time.Time, names ...string) tls.Certificate {
	tb.Helper()
	return issue(tb, ca.Cert, ca.Key, names, notBefore, notAfter)
}

// SelfSigned issues a certificate for names signed by nobody a client
// trusts.
func SelfSigned(tb testing.TB, names ...string) tls.Certificate {
	tb.Helper()
	return issue(tb, nil, nil, names, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

func issue(tb testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, names []string, notBefore, notAfter time.Time) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generating leaf key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatalf("creating leaf certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("parsing leaf certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// SPKIPin returns the SHA-256 of the certificate's SubjectPublicKeyInfo,
// the value an upstream's spki_pins holds (base64-encoded there).
func SPKIPin(c tls.Certificate) []byte {
	sum := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
	return sum[:]
}

// WriteFiles writes the CA certificate and, when leaf is non-nil, the leaf
// certificate and key as PEM files in dir, for software outside the test
// process (Unbound, the built binary). It returns their paths.
func (ca *CA) WriteFiles(tb testing.TB, dir string, leaf *tls.Certificate) (caFile, certFile, keyFile string) {
	tb.Helper()
	caFile = filepath.Join(dir, "ca.pem")
	write(tb, caFile, ca.PEM)
	if leaf == nil {
		return caFile, "", ""
	}
	certFile = filepath.Join(dir, "server.pem")
	keyFile = filepath.Join(dir, "server.key")
	write(tb, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}))
	der, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		tb.Fatalf("encoding leaf key: %v", err)
	}
	write(tb, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return caFile, certFile, keyFile
}

func write(tb testing.TB, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("writing %s: %v", path, err)
	}
}

func serial(tb testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatalf("serial: %v", err)
	}
	return n
}
