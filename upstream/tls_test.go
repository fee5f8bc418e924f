package upstream

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestTLSVerification: an upstream whose certificate does not check out
// is never sent a query; one that does (including by a matching pin) is.
func TestTLSVerification(t *testing.T) {
	ca := dottest.NewCA(t)
	other := dottest.NewCA(t)
	good := ca.Leaf(t, testTLSName)
	tests := []struct {
		name    string
		cert    tls.Certificate
		pins    [][]byte
		maxTLS  uint16
		wantErr bool
	}{
		{name: "valid", cert: good},
		{name: "valid, pin matches", cert: good, pins: [][]byte{dottest.SPKIPin(other.Leaf(t, testTLSName)), dottest.SPKIPin(good)}},
		{name: "valid, pin names the CA the server does not send", cert: good, pins: [][]byte{caPin(ca)}},
		{name: "certificate for another name", cert: ca.Leaf(t, "other.test"), wantErr: true},
		{name: "self-signed", cert: dottest.SelfSigned(t, testTLSName), wantErr: true},
		{name: "CA not trusted", cert: other.Leaf(t, testTLSName), wantErr: true},
		{name: "valid, pin mismatch", cert: good, pins: [][]byte{dottest.SPKIPin(other.Leaf(t, testTLSName))}, wantErr: true},
		{name: "TLS 1.1 only", cert: good, maxTLS: tls.VersionTLS11, wantErr: true},
		{name: "TLS 1.2 accepted", cert: good, maxTLS: tls.VersionTLS12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := dottest.Start(t, dottest.Options{Cert: tt.cert, MaxVersion: tt.maxTLS})
			u := newUpstream(t, ca, srv, Options{SPKIPins: tt.pins})
			_, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA))
			if tt.wantErr {
				if err == nil {
					t.Fatal("query answered over an unverified connection")
				}
				t.Logf("refused: %v", err)
				if n := srv.Queries(); n != 0 {
					t.Errorf("server read %d queries over an unverified connection", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTLSSession: the client offers ALPN "dot", and a second connection
// resumes the first one's session.
func TestTLSSession(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, nil)
	u := newUpstream(t, ca, srv, Options{})
	for i := range 2 {
		if i == 1 {
			// The far end drops the connection; the next query dials
			// again.
			srv.DropConns()
			waitFor(t, "the dropped connection to be noticed", func() bool { return u.OpenConns() == 0 })
		}
		if _, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA)); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	states := srv.States()
	if len(states) != 2 {
		t.Fatalf("server completed %d handshakes, want 2", len(states))
	}
	for i, st := range states {
		if st.NegotiatedProtocol != alpnDoT {
			t.Errorf("connection %d: ALPN %q, want %q", i, st.NegotiatedProtocol, alpnDoT)
		}
		if st.Version < tls.VersionTLS12 {
			t.Errorf("connection %d: %s", i, tls.VersionName(st.Version))
		}
	}
	if states[0].DidResume {
		t.Error("first connection resumed a session it cannot have had")
	}
	if !states[1].DidResume {
		t.Error("second connection did not resume the first one's session")
	}
}

// caPin is the SPKI pin of the CA's own certificate.
func caPin(ca *dottest.CA) []byte {
	sum := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	return sum[:]
}

// TestDialTLSSaysWhichStepFailed: a server that accepts the connection
// and never answers the handshake gives an error that names the TLS
// handshake and is still the context's deadline.
func TestDialTLSSaysWhichStepFailed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = dialTLS(ctx, ln.Addr().String(), &tls.Config{ServerName: testTLSName})
	if err == nil || !strings.Contains(err.Error(), "TLS handshake") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dialTLS to a silent server: %v, want a TLS handshake error that is the deadline", err)
	}
	select {
	case c := <-accepted:
		c.Close()
	default:
	}
}
