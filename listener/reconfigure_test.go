package listener

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestReconfigure: a serving Server takes a new resolver and access list
// at once, keeps its sockets, and refuses other addresses.
func TestReconfigure(t *testing.T) {
	s, _ := startServer(t, Options{Resolver: echo})
	opts := Options{Addrs: []netip.AddrPort{loopback}, Resolver: echo}
	c := udpClient{dialUDP(t, s.UDPAddrs()[0])}
	ask := func() *dns.Msg {
		t.Helper()
		c.send(t, packQuery(t, 7, "example.com.", dns.TypeA, 0))
		m, _ := c.recv(t)
		return m
	}
	if m := ask(); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("before: %v", m)
	}

	opts.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if err := s.Reconfigure(opts); err != nil {
		t.Fatal(err)
	}
	if m := ask(); m.Rcode != dns.RcodeRefused {
		t.Fatalf("after allowing only 10/8: %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}

	opts.Allow = nil
	opts.Resolver = msgFunc(func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		return new(dns.Msg).SetRcode(q, dns.RcodeNameError), nil
	})
	if err := s.Reconfigure(opts); err != nil {
		t.Fatal(err)
	}
	if m := ask(); m.Rcode != dns.RcodeNameError {
		t.Fatalf("after a new resolver: %s, want NXDOMAIN from it", dns.RcodeToString[m.Rcode])
	}

	opts.Addrs = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5399")}
	if err := s.Reconfigure(opts); !errors.Is(err, ErrAddrsChanged) {
		t.Fatalf("other addresses: %v, want ErrAddrsChanged", err)
	}
	if m := ask(); m.Rcode != dns.RcodeNameError {
		t.Fatal("a refused Reconfigure changed the server")
	}
}

// TestReconfigureTCPIdleTimeout: a new idle timeout applies to the
// connections already open, from their next read.
func TestReconfigureTCPIdleTimeout(t *testing.T) {
	s, _ := startServer(t, Options{Resolver: echo, TCPIdleTimeout: time.Hour})
	c := tcpClient{dialTCP(t, s.TCPAddrs()[0], netip.Addr{})}
	if err := s.Reconfigure(Options{Addrs: []netip.AddrPort{loopback}, Resolver: echo, TCPIdleTimeout: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	c.send(t, packQuery(t, 1, "example.com.", dns.TypeA, 0))
	if m, _ := c.recv(t); m.Id != 1 {
		t.Fatalf("got %v", m)
	}
	// Closed by the new timeout, not the hour New set.
	waitClosed(t, c.c, ioTimeout)
}
