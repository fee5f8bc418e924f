package cache

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// serve starts a listener on loopback in front of r and returns its UDP
// and TCP addresses.
func serve(t *testing.T, r resolver.Resolver) (udp, tcp netip.AddrPort) {
	t.Helper()
	return serveWith(t, r, nil)
}

// exchange sends q to addr over net and returns the answer and its size.
func exchange(t *testing.T, network string, addr netip.AddrPort, q *dns.Msg) (*dns.Msg, int) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: testTimeout, UDPSize: dns.MaxMsgSize}
	conn, err := c.Dial(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testTimeout))
	if err := conn.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	raw, err := conn.ReadMsgHeader(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		t.Fatal(err)
	}
	return m, len(raw)
}

// TestStaleThroughListener: with the only DoT upstream killed, an
// expired entry still answers a UDP client, with TTL 30 and EDE 3.
func TestStaleThroughListener(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test")}) // A 192.0.2.1, TTL 300
	u, err := upstream.New(upstream.Options{Name: "test", Addr: srv.Addr(), TLSName: "dns.test", RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	sel, err := upstream.NewSelector(upstream.SelectorOptions{}, u)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	c := New(Options{Now: clk.Now, ServeStale: true})
	t.Cleanup(c.Close)
	addr, _ := serve(t, c.Wrap(sel))

	q := query("example.com.", dns.TypeA, true, false)
	m, _ := exchange(t, "udp", addr, q)
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 300 || resolver.EDE(m) != nil {
		t.Fatalf("fresh answer %v", m)
	}
	srv.Kill()
	clk.advance(time.Hour)
	m, _ = exchange(t, "udp", addr, q)
	e := resolver.EDE(m)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != staleTTL ||
		e == nil || e.InfoCode != dns.ExtendedErrorCodeStaleAnswer {
		t.Fatalf("got %v, want the stale answer with TTL 30 and EDE 3", m)
	}
	if srv.Queries() != 1 {
		t.Fatalf("the DoT server saw %d queries, want 1", srv.Queries())
	}
}

// TestHitShapedByListener: a cached answer still meets each client's
// size: truncated with TC for a client without EDNS over UDP, whole for
// one with a big enough EDNS buffer and over TCP.
func TestHitShapedByListener(t *testing.T) {
	up := answering(withA(300, 40)) // about 700 bytes
	_, r := newCache(t, Options{Now: newClock().Now}, up)
	udp, tcp := serve(t, r)
	for _, tc := range []struct {
		name    string
		network string
		addr    netip.AddrPort
		udpSize uint16 // 0: no EDNS
		wantTC  bool
		limit   int
	}{
		{"EDNS 4096 stores it", "udp", udp, 4096, false, 4096},
		{"no EDNS", "udp", udp, 0, true, 512},
		{"EDNS 512", "udp", udp, 512, true, 512},
		{"EDNS 1232", "udp", udp, 1232, false, 1232},
		{"TCP", "tcp", tcp, 0, false, dns.MaxMsgSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := query("big.example.", dns.TypeA, false, false)
			if tc.udpSize > 0 {
				q.SetEdns0(tc.udpSize, false)
			}
			m, size := exchange(t, tc.network, tc.addr, q)
			if m.Truncated != tc.wantTC || size > tc.limit {
				t.Fatalf("TC %v, %d bytes; want TC %v within %d", m.Truncated, size, tc.wantTC, tc.limit)
			}
			if !tc.wantTC && len(m.Answer) != 40 {
				t.Fatalf("%d records, want 40", len(m.Answer))
			}
			if (m.IsEdns0() != nil) != (tc.udpSize > 0) {
				t.Fatalf("OPT %v for a client with EDNS size %d", m.IsEdns0(), tc.udpSize)
			}
		})
	}
	if up.count() != 1 {
		t.Fatalf("%d upstream queries, want 1", up.count())
	}
}
