package listener

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

func TestAnswer(t *testing.T) {
	s, _ := startServer(t, Options{})
	for tr, c := range clients(t, s) {
		t.Run(tr, func(t *testing.T) {
			c.send(t, packQuery(t, 0x1234, "example.com.", dns.TypeA, 0))
			m, _ := c.recv(t)
			if m.Id != 0x1234 || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
				t.Fatalf("got %v", m)
			}
		})
	}
}

func TestUDPLargeQueryReadWhole(t *testing.T) {
	const padding = 3960
	s, _ := startServer(t, Options{Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		for _, o := range q.IsEdns0().Option {
			if p, ok := o.(*dns.EDNS0_PADDING); ok && len(p.Padding) == padding {
				return echo(ctx, q)
			}
		}
		return nil, &resolver.Error{Code: dns.ExtendedErrorCodeOther, Text: "query not read whole"}
	})})
	q := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
	q.SetEdns0(1232, false)
	opt := q.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, padding)})
	raw := mustPack(t, q)
	if len(raw) < 4000 {
		t.Fatalf("query is %d bytes, want 4000 or more", len(raw))
	}
	c := udpClient{dialUDP(t, s.UDPAddrs()[0])}
	c.send(t, raw)
	m, _ := c.recv(t)
	if m.Rcode != dns.RcodeSuccess {
		t.Fatalf("got %v", m)
	}
	if opt := m.IsEdns0(); opt == nil || len(opt.Option) != 0 {
		t.Errorf("reply OPT %v, want one without padding", opt)
	}
}

func TestTruncation(t *testing.T) {
	tests := []struct {
		name    string
		tr      string
		udpSize uint16 // client's EDNS size; 0: no EDNS
		maxUDP  int    // Options.MaxUDPSize
		records int    // A records in the answer (16 bytes each, compressed)
		limit   int    // largest reply allowed
		wantTC  bool
	}{
		{name: "no EDNS, over 512", tr: "udp", records: 40, limit: 512, wantTC: true},
		{name: "no EDNS, under 512", tr: "udp", records: 20, limit: 512},
		{name: "EDNS 1232, over", tr: "udp", udpSize: 1232, records: 100, limit: 1232, wantTC: true},
		{name: "EDNS 256 counts as 512", tr: "udp", udpSize: 256, records: 40, limit: 512, wantTC: true},
		{name: "EDNS 4096, 2000 bytes fit under MaxUDPSize 4096", tr: "udp", udpSize: 4096, maxUDP: 4096, records: 120, limit: 4096},
		{name: "EDNS 4096 capped by the default MaxUDPSize", tr: "udp", udpSize: 4096, records: 120, limit: 1232, wantTC: true},
		{name: "EDNS 65535 capped by MaxUDPSize 512", tr: "udp", udpSize: 65535, maxUDP: 512, records: 40, limit: 512, wantTC: true},
		{name: "TCP never truncates", tr: "tcp", records: 1000, limit: dns.MaxMsgSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, Options{MaxUDPSize: tt.maxUDP, Resolver: msgFunc(func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
				return answerA(q, tt.records), nil
			})})
			c := clients(t, s)[tt.tr]
			c.send(t, packQuery(t, 7, "example.com.", dns.TypeA, tt.udpSize))
			m, size := c.recv(t) // recv fails the test if the reply does not parse
			if m.Truncated != tt.wantTC || size > tt.limit {
				t.Fatalf("TC %v, %d bytes; want TC %v, at most %d bytes", m.Truncated, size, tt.wantTC, tt.limit)
			}
			if !tt.wantTC && len(m.Answer) != tt.records {
				t.Errorf("%d records, want all %d", len(m.Answer), tt.records)
			}
			if tt.wantTC && (len(m.Answer) >= tt.records || m.Id != 7) {
				t.Errorf("truncated reply has ID %#x and %d of %d records", m.Id, len(m.Answer), tt.records)
			}
			if (m.IsEdns0() != nil) != (tt.udpSize > 0) {
				t.Errorf("OPT %v, want one: %v", m.IsEdns0(), tt.udpSize > 0)
			}
		})
	}
}

// TestUDPReplyFromQueriedAddress binds 0.0.0.0 and queries 127.0.0.2 from
// a connected socket, which takes replies only from 127.0.0.2; without
// packet info the kernel would answer from 127.0.0.1, the route's source.
// A worker (an answer that waited) and the read loop (one made at once)
// each write the control message.
func TestUDPReplyFromQueriedAddress(t *testing.T) {
	for _, path := range []struct {
		name string
		res  resolver.Resolver
	}{{"waited", echo}, {"inline", &wireEcho{}}} {
		t.Run(path.name, func(t *testing.T) {
			s, _ := startServer(t, Options{Resolver: path.res, Logger: quiet(), Addrs: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:0")}})
			testReplyFrom(t, s)
			if f, ok := path.res.(*wireEcho); ok && (f.inline.Load() != 2 || f.slow.Load() != 0) {
				t.Errorf("%d inline answers and %d after a wait, want 2 inline", f.inline.Load(), f.slow.Load())
			}
		})
	}
}

func testReplyFrom(t *testing.T, s *Server) {
	addrs := s.UDPAddrs()
	if len(addrs) != 1 || !addrs[0].Addr().IsUnspecified() || addrs[0].Port() == 0 {
		t.Fatalf("UDPAddrs() = %v", addrs)
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		t.Run(ip, func(t *testing.T) {
			to := netip.AddrPortFrom(netip.MustParseAddr(ip), addrs[0].Port())
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, net.UDPAddrFromAddrPort(to))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			u := udpClient{c}
			u.send(t, packQuery(t, 5, "example.com.", dns.TypeA, 0))
			if m, _ := u.recv(t); m.Id != 5 {
				t.Fatalf("got %v", m)
			}
		})
	}
}
