package upstream

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// closeCode is the application error code the client closed a
// connection with, as the server saw it; -1 when something else ended it.
func closeCode(err error) int64 {
	var app *quic.ApplicationError
	if !errors.As(err, &app) || !app.Remote {
		return -1
	}
	return int64(app.ErrorCode)
}

// TestDoQClose: the client closes a connection in good order, with
// DOQ_NO_ERROR, once nothing was asked on it for IdleTimeout, and every
// connection on Close; after an idle close the next query dials again,
// after Close it fails at once.
func TestDoQClose(t *testing.T) {
	tests := []struct {
		name  string
		idle  time.Duration
		close bool
	}{
		{"idle", 100 * time.Millisecond, false},
		{"Close", time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoQ(t, ca, nil)
			u := newDoQUpstream(t, ca, srv, Options{IdleTimeout: tt.idle})
			if _, err := u.Exchange(ctxFor(t, testTimeout), query("first.test.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			if tt.close {
				u.Close()
			}
			waitFor(t, "the server to see the close", func() bool { return len(srv.CloseErrors()) == 1 })
			if code := closeCode(srv.CloseErrors()[0]); code != doqNoError {
				t.Errorf("connection ended by %v, want the client's DOQ_NO_ERROR", srv.CloseErrors()[0])
			}
			if n := u.OpenConns(); n != 0 {
				t.Errorf("%d connections open after the close, want 0", n)
			}

			_, err := u.Exchange(ctxFor(t, testTimeout), query("next.test.", dns.TypeA))
			switch {
			case tt.close && !errors.Is(err, ErrConnClosed):
				t.Errorf("query after Close: %v, want ErrConnClosed", err)
			case !tt.close && err != nil:
				t.Errorf("query after the idle close: %v", err)
			case !tt.close && srv.Accepts() != 2:
				t.Errorf("server accepted %d connections, want 2", srv.Accepts())
			}
		})
	}
}

// TestDoQDialTimeout: a server that never answers the handshake fails the
// query as a timeout after DialTimeout, not after the query's own
// deadline.
func TestDoQDialTimeout(t *testing.T) {
	const dialTimeout = 200 * time.Millisecond
	ca := dottest.NewCA(t)
	// A UDP socket that nobody reads: the handshake's packets queue there.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	u, err := New(Options{Name: "silent", Transport: QUIC, Addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(),
		TLSName: testTLSName, RootCAs: ca.Pool, DialTimeout: dialTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)

	start := time.Now()
	_, err = u.Exchange(ctxFor(t, testTimeout), query("silent.test.", dns.TypeA))
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("a query to a silent server was answered")
	}
	if got := classify(err); got != ErrorTimeout {
		t.Errorf("error %v classified %v, want timeout", err, got)
	}
	if elapsed < dialTimeout || elapsed > testTimeout/2 {
		t.Errorf("query failed after %v, want about the dial timeout %v", elapsed, dialTimeout)
	}
	if s := u.Stats(); s.Errors[ErrorTimeout] != 1 {
		t.Errorf("errors %v, want one timeout", s.Errors)
	}
}

// TestDoQDialMovesOn: an upstream named by a host whose first address
// does not answer fails that dial, and the next dial takes the next
// address, where the server is.
func TestDoQDialMovesOn(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startDoQ(t, ca, nil)
	// Nothing listens on 127.0.0.2 at the server's port.
	dead := netip.MustParseAddr("127.0.0.2")
	lookup := func(context.Context, string) ([]netip.Addr, time.Duration, error) {
		return []netip.Addr{dead, srv.Addr().Addr()}, time.Hour, nil
	}
	u, err := New(Options{Name: "host", Transport: QUIC, Host: testTLSName, Port: srv.Addr().Port(), Lookup: lookup,
		TLSName: testTLSName, RootCAs: ca.Pool, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)

	if _, err := u.Exchange(ctxFor(t, testTimeout), query("first.test.", dns.TypeA)); err == nil {
		t.Fatal("answered through an address where nothing listens")
	} else if !strings.Contains(err.Error(), dead.String()) {
		t.Errorf("error %v does not name the address dialed, %v", err, dead)
	}
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("second.test.", dns.TypeA)); err != nil {
		t.Fatalf("the next dial did not move on to the server's address: %v", err)
	}
	if srv.Accepts() != 1 {
		t.Errorf("server accepted %d connections, want 1", srv.Accepts())
	}
}
