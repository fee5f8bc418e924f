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

// FuzzWireMatchesRendered feeds arbitrary queries to two servers that
// share one cache (with a frozen clock): in front of one, a layer makes
// every question look uncopyable, so that each hit is rendered as a
// message and packed by the listener; the other gets hits copied from
// their packed form when they fit. Whatever the copy answers must be the
// rendered answer to the same query, but for the letter case of names,
// which compression against the client's question may change; and it
// must fit the client's limit.
func FuzzWireMatchesRendered(f *testing.F) {
	for _, seed := range querySeeds(f) {
		f.Add(seed.raw, false)
		f.Add(seed.raw, true)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := cache.New(cache.Options{Now: func() time.Time { return now }})
	f.Cleanup(c.Close)
	var copied bool
	chain := resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		resp, err := c.Wrap(msgFunc(func(_ context.Context, q *dns.Msg) (*dns.Msg, error) { return cachedAnswer(q), nil })).Resolve(ctx, req)
		copied = resp.Wire != nil
		return resp, err
	})
	render := resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		req.QuestionEnd = 0
		return chain.Resolve(ctx, req)
	})
	rendered, err := New(Options{Addrs: []netip.AddrPort{loopback}, Resolver: render, Logger: slog.New(&testlog.Recorder{})})
	if err != nil {
		f.Fatal(err)
	}
	wire, err := New(Options{Addrs: []netip.AddrPort{loopback}, Resolver: chain, Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	client := netip.MustParseAddrPort("192.168.1.20:40000")
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		tr := resolver.UDP
		if tcp {
			tr = resolver.TCP
		}
		answerOnce(rendered, raw, client, tr) // fills the cache when the query is a cacheable one
		copied = false
		got := answerOnce(wire, raw, client, tr)
		if !copied {
			return
		}
		want := answerOnce(rendered, raw, client, tr)
		g, w := new(dns.Msg), new(dns.Msg)
		if err := g.Unpack(got); err != nil {
			t.Fatalf("copied answer does not unpack: %v\n%x", err, got)
		}
		if err := w.Unpack(want); err != nil {
			t.Fatalf("rendered answer does not unpack: %v", err)
		}
		if w.Truncated && !g.Truncated {
			// A copy is compressed against the client's question
			// whatever its case; dns.Msg only where the case matches,
			// and may have had to truncate what the copy fits. The
			// copy is then the whole of it.
			if len(g.Answer) < len(w.Answer) {
				t.Fatalf("copied answer has %d records, the truncated rendered one %d", len(g.Answer), len(w.Answer))
			}
			for i, rr := range w.Answer {
				if gs, ws := strings.ToLower(g.Answer[i].String()), strings.ToLower(rr.String()); gs != ws {
					t.Fatalf("record %d: copied %s, rendered %s", i, gs, ws)
				}
			}
			return
		}
		if gs, ws := strings.ToLower(g.String()), strings.ToLower(w.String()); gs != ws {
			t.Fatalf("copied\n%s\nrendered\n%s", gs, ws)
		}
		limit := dns.MaxMsgSize
		if tr == resolver.UDP {
			var q resolver.Request
			parsePacked(raw, &q)
			limit = q.Limit
		}
		if len(got) > limit {
			t.Fatalf("copied answer of %d octets; the client takes %d", len(got), limit)
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
