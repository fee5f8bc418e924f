package filter

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/listener"
	"github.com/dotproxy/dotproxy/resolver"
)

// serve starts a listener on loopback in front of f and up, and returns
// its UDP and TCP addresses. A middleware in front of f makes every
// query come from client, whatever loopback address it came from.
func serve(t *testing.T, f *Filter, up resolver.Resolver, client netip.Addr) (udp, tcp string) {
	t.Helper()
	withClient := func(next resolver.Resolver) resolver.Resolver {
		return resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
			req.Client = client
			return next.Resolve(ctx, req)
		})
	}
	s := startListener(t, resolver.Chain(up, withClient, f.Middleware()), nil)
	return s.UDPAddrs()[0].String(), s.TCPAddrs()[0].String()
}

// startListener starts a listener on 127.0.0.1 in front of r, logging to
// logger (nil: nowhere), and shuts it down at cleanup.
func startListener(t *testing.T, r resolver.Resolver, logger *slog.Logger) *listener.Server {
	t.Helper()
	s, err := listener.New(listener.Options{
		Addrs:    []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		Resolver: r,
		Logger:   logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// exchange sends a query for name and qtype to addr over network, with
// EDNS when edns, and returns the answer after checking that it echoes
// the query's ID and question.
func exchange(t *testing.T, network, addr, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, qtype)
	if edns {
		q.SetEdns0(1232, false)
	}
	c := &dns.Client{Net: network, Timeout: pollTimeout}
	m, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	if m.Id != q.Id || len(m.Question) != 1 || m.Question[0] != q.Question[0] {
		t.Fatalf("answer does not echo the query: %v", m)
	}
	return m
}

// TestEndToEnd sends blocked, allowed and local queries through the real
// listener over UDP and TCP, for every block response.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	block := writeFile(t, dir, "block.txt", "0.0.0.0 ads.example.com\n||kids.example.com^\n")
	allow := writeFile(t, dir, "allow.txt", "ok.ads.example.com\n")
	for _, tc := range []struct {
		mode   string
		qtype  uint16
		rcode  int
		answer string
		soa    bool
	}{
		{BlockNXDomain, dns.TypeA, dns.RcodeNameError, "", true},
		{BlockNoData, dns.TypeAAAA, dns.RcodeSuccess, "", true},
		{BlockRefused, dns.TypeA, dns.RcodeRefused, "", false},
		{BlockNullIP, dns.TypeA, dns.RcodeSuccess, "0.0.0.0", false},
		{BlockNullIP, dns.TypeAAAA, dns.RcodeSuccess, "::", false},
		{BlockNullIP, dns.TypeHTTPS, dns.RcodeSuccess, "", true},
	} {
		t.Run(tc.mode+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			f, _ := newFilter(t, Options{
				Blocklists:    []string{block},
				Allowlists:    []string{allow},
				BlockResponse: tc.mode,
				LocalRecords:  map[string][]netip.Addr{"nas.home.arpa": {netip.MustParseAddr("192.168.1.10")}},
				Groups:        []Group{{Name: "tv", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.50/32")}}},
			})
			up := &upstream{}
			udp, tcp := serve(t, f, up, netip.MustParseAddr("127.0.0.1"))
			for network, addr := range map[string]string{"udp": udp, "tcp": tcp} {
				m := exchange(t, network, addr, "Tracker.Ads.Example.com.", tc.qtype, true)
				checkBlock(t, m, tc.rcode, tc.answer, tc.soa)

				// Without EDNS: the same answer, with no OPT and so no EDE.
				m = exchange(t, network, addr, "ads.example.com.", tc.qtype, false)
				if m.Rcode != tc.rcode || m.IsEdns0() != nil {
					t.Fatalf("%s without EDNS: rcode %s, OPT %v", network, dns.RcodeToString[m.Rcode], m.IsEdns0())
				}

				if m := exchange(t, network, addr, "ok.ads.example.com.", dns.TypeA, true); isBlocked(m) || len(m.Answer) != 1 {
					t.Fatalf("%s: allowed name: %v", network, m)
				}
				m = exchange(t, network, addr, "nas.home.arpa.", dns.TypeA, true)
				if !m.Authoritative || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.168.1.10" {
					t.Fatalf("%s: local record: %v", network, m)
				}
				if m := exchange(t, network, addr, "nobody.home.arpa.", dns.TypeA, true); m.Rcode != dns.RcodeNameError {
					t.Fatalf("%s: unknown home.arpa name: %v", network, m)
				}
			}
			if n := up.queries.Load(); n != 2 {
				t.Fatalf("%d queries upstream, want 2: only the allowed name", n)
			}
		})
	}
}

// TestEndToEndGroups checks that a group's lists apply to its clients,
// through the listener.
func TestEndToEndGroups(t *testing.T) {
	dir := t.TempDir()
	block := writeFile(t, dir, "block.txt", "ads.example.com\n")
	kids := writeFile(t, dir, "kids.txt", "games.example.com\n")
	f, _ := newFilter(t, Options{
		Blocklists: []string{block},
		Groups: []Group{
			{Name: "kids", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.128/25")}, Blocklists: []string{block, kids}},
		},
	})
	up := &upstream{}
	kidsUDP, kidsTCP := serve(t, f, up, netip.MustParseAddr("192.168.1.130"))
	adultUDP, adultTCP := serve(t, f, up, netip.MustParseAddr("192.168.1.10"))
	for _, tc := range []struct {
		network, addr, name string
		blocked             bool
	}{
		{"udp", kidsUDP, "games.example.com.", true},
		{"tcp", kidsTCP, "ads.example.com.", true},
		{"udp", adultUDP, "games.example.com.", false},
		{"tcp", adultTCP, "ads.example.com.", true},
	} {
		if m := exchange(t, tc.network, tc.addr, tc.name, dns.TypeA, true); isBlocked(m) != tc.blocked {
			t.Errorf("%s %s: blocked %v, want %v", tc.addr, tc.name, isBlocked(m), tc.blocked)
		}
	}
}
