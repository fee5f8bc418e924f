package upstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"

	"github.com/dotproxy/dotproxy/internal/rawconn"
)

// alpnDoT is the ALPN protocol ID for DNS-over-TLS (RFC 7858, IANA).
const alpnDoT = "dot"

// sessionCacheSize bounds the TLS session tickets kept per upstream; a
// few suffice for the couple of connections each one has.
const sessionCacheSize = 8

// tlsConfig builds the client TLS configuration for one upstream: the
// certificate must be valid for name under roots (nil: system roots), and
// when pins are given its SubjectPublicKeyInfo must match one of them
// (RFC 7858 §4.2). The certificate's dates are judged at clock's time for
// the chain (nil: the system clock). There is no option to skip
// verification.
func tlsConfig(name string, roots *x509.CertPool, pins [][]byte, clock *Clock) *tls.Config {
	conf := &tls.Config{
		ServerName:         name,
		RootCAs:            roots,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{alpnDoT},
		ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize),
	}
	if clock == nil && len(pins) == 0 {
		return conf // crypto/tls verifies, at the system clock
	}
	// The chain is verified here rather than by crypto/tls, in full, for
	// every handshake (resumed ones too): only here is the time to judge
	// it at chosen with the chain in hand (Clock.For). crypto/tls's own
	// check is off because it would judge at one time for all chains.
	conf.InsecureSkipVerify = true
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		chains, err := verifyChain(cs.PeerCertificates, name, roots, clock)
		if err != nil {
			return err
		}
		if len(pins) == 0 {
			return nil
		}
		// Pins may name any certificate of a verified chain, the root
		// included, which the server need not send.
		certs := cs.PeerCertificates
		for _, chain := range chains {
			certs = append(certs[:len(certs):len(certs)], chain...)
		}
		return verifyPins(certs, pins)
	}
	return conf
}

// verifyChain verifies the server's certificates as crypto/tls does: the
// first, for name, up to one of roots (nil: the system's) through the
// others, at clock's time for them (nil clock: now). It returns the
// verified chains.
func verifyChain(peer []*x509.Certificate, name string, roots *x509.CertPool, clock *Clock) ([][]*x509.Certificate, error) {
	if len(peer) == 0 {
		return nil, errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range peer[1:] {
		opts.Intermediates.AddCert(c)
	}
	if clock != nil {
		opts.CurrentTime = clock.For(peer)
	}
	chains, err := peer[0].Verify(opts)
	if err != nil {
		return nil, &tls.CertificateVerificationError{UnverifiedCertificates: peer, Err: err}
	}
	return chains, nil
}

// verifyPins accepts the chain when any of its certificates' SPKI hash is
// pinned, the way HPKP and RFC 7858 pins do.
func verifyPins(chain []*x509.Certificate, pins [][]byte) error {
	for _, c := range chain {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		for _, p := range pins {
			if bytes.Equal(sum[:], p) {
				return nil
			}
		}
	}
	if len(chain) == 0 {
		return fmt.Errorf("SPKI pin check: no peer certificate")
	}
	sum := sha256.Sum256(chain[0].RawSubjectPublicKeyInfo)
	return fmt.Errorf("SPKI pin check: certificate key %s matches no pin", base64.StdEncoding.EncodeToString(sum[:]))
}

// dialTLS connects to addr over TCP and completes a TLS handshake with
// conf, within ctx. The socket is read and written with raw system
// calls (internal/rawconn): a blocking one would wake Go's monitor
// thread on every query that comes after the process went idle.
func dialTLS(ctx context.Context, addr string, conf *tls.Config) (*tls.Conn, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(rawconn.Wrap(nc), conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		// Said apart from the TCP connect: a handshake that never ends
		// on a connection that was accepted is what a network that
		// intercepts port 853 looks like.
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}
