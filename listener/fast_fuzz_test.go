package listener

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/internal/testlog"
	"github.com/dotproxy/dotproxy/resolver"
)

// FuzzFastMatchesUsual feeds arbitrary queries to two servers that share
// one cache (with a frozen clock): one logs at Debug, so that every query
// takes the usual path; the other is quiet, so that cache hits take the
// fast path. Whatever the fast path answers must be the usual path's
// answer to the same query, but for the letter case of names, which
// compression against the client's question may change; and it must fit
// the client's limit.
func FuzzFastMatchesUsual(f *testing.F) {
	for _, seed := range querySeeds(f) {
		f.Add(seed.raw, false)
		f.Add(seed.raw, true)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := cache.New(cache.Options{Now: func() time.Time { return now }})
	f.Cleanup(c.Close)
	chain := c.Wrap(resolver.Func(func(_ context.Context, q *dns.Msg) (*dns.Msg, error) { return cachedAnswer(q), nil }))
	usual, err := New(Options{Addrs: []netip.AddrPort{loopback}, Resolver: chain, Logger: slog.New(&testlog.Recorder{})})
	if err != nil {
		f.Fatal(err)
	}
	fast, err := New(Options{Addrs: []netip.AddrPort{loopback}, Resolver: chain, Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	client := netip.MustParseAddrPort("192.168.1.20:40000")
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		tr := transportUDP
		if tcp {
			tr = transportTCP
		}
		usual.answer(raw, client, tr) // fills the cache when the query is a cacheable one
		got, ok := fast.answerPacked(new(scratch), []byte{0xAA}, raw, client, tr)
		if !ok {
			return
		}
		if got[0] != 0xAA {
			t.Fatal("the fast path overwrote what dst held")
		}
		got = got[1:]
		want := usual.answer(raw, client, tr)
		g, w := new(dns.Msg), new(dns.Msg)
		if err := g.Unpack(got); err != nil {
			t.Fatalf("fast answer does not unpack: %v\n%x", err, got)
		}
		if err := w.Unpack(want); err != nil {
			t.Fatalf("usual answer does not unpack: %v", err)
		}
		if w.Truncated && !g.Truncated {
			// The fast path compresses against the client's question
			// whatever its case; the usual path (dns.Msg) only where
			// the case matches, and may have had to truncate what the
			// fast path fits. The fast answer is then the whole of it.
			if len(g.Answer) < len(w.Answer) {
				t.Fatalf("fast answer has %d records, the truncated usual one %d", len(g.Answer), len(w.Answer))
			}
			for i, rr := range w.Answer {
				if gs, ws := strings.ToLower(g.Answer[i].String()), strings.ToLower(rr.String()); gs != ws {
					t.Fatalf("record %d: fast %s, usual %s", i, gs, ws)
				}
			}
			return
		}
		if gs, ws := strings.ToLower(g.String()), strings.ToLower(w.String()); gs != ws {
			t.Fatalf("fast path answered\n%s\nthe usual path\n%s", gs, ws)
		}
		limit := dns.MaxMsgSize
		if tr == transportUDP {
			var q resolver.Packed
			parsePacked(raw, &q)
			limit = q.Limit
		}
		if len(got) > limit {
			t.Fatalf("fast answer of %d octets; the client takes %d", len(got), limit)
		}
	})
}

// cachedAnswer is the upstream behind the fuzzed cache: answers that vary
// with the name (A records, a CNAME chain, NXDOMAIN with an SOA, an EDE,
// AD), all cacheable.
func cachedAnswer(q *dns.Msg) *dns.Msg {
	name := q.Question[0].Name
	m := new(dns.Msg).SetReply(q)
	m.Question[0].Name = strings.ToLower(name)
	m.RecursionAvailable = true
	h := len(name)
	switch {
	case h%5 == 0:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 900},
			Ns: "a.root-servers.net.", Mbox: "nstld.verisign-grs.com.", Serial: 1, Refresh: 1800, Retry: 900, Expire: 604800, Minttl: 600}}
		return m
	case h%5 == 1:
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300},
			Target: "edge." + strings.ToLower(name)})
		name = "edge." + strings.ToLower(name)
	case h%5 == 2:
		m.AuthenticatedData = true
	}
	for i := range h % 7 {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: uint32(60 + i)},
			A: net.IPv4(198, 51, 100, byte(i))})
	}
	if h%3 == 0 {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: "fuzz"}}
	}
	return m
}
