package cache

import (
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestCompactRendersAlike: an answer the store keeps compact (its records
// only in the packed form) renders exactly as the records it was made
// from would, fresh, counted down and stale, to queries with and without
// EDNS and in another letter case; and renders are the caller's own.
func TestCompactRendersAlike(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	soa := "example. 3600 IN SOA ns.example. host.example. 1 7200 900 1209600 300"
	for _, tc := range []struct {
		name  string
		qtype uint16
		build func(r *dns.Msg)
	}{
		{"A records", dns.TypeA, func(r *dns.Msg) {
			r.Answer = []dns.RR{rr("www.example. 300 IN A 192.0.2.1"), rr("www.example. 200 IN A 192.0.2.2")}
		}},
		{"CNAME chain to AAAA", dns.TypeAAAA, func(r *dns.Msg) {
			r.Answer = []dns.RR{rr("www.example. 300 IN CNAME edge.Example.net."), rr("edge.Example.net. 60 IN AAAA 2001:db8::1")}
		}},
		{"MX with glue", dns.TypeMX, func(r *dns.Msg) {
			r.Answer = []dns.RR{rr("www.example. 300 IN MX 10 mail.example.")}
			r.Ns = []dns.RR{rr("example. 3600 IN NS ns.example.")}
			r.Extra = []dns.RR{rr("mail.example. 300 IN A 192.0.2.25"), rr("mail.example. 300 IN AAAA 2001:db8::25")}
		}},
		{"TXT", dns.TypeTXT, func(r *dns.Msg) {
			r.Answer = []dns.RR{rr(`www.example. 300 IN TXT "v=spf1 -all" "second string"`)}
		}},
		{"NXDOMAIN", dns.TypeA, func(r *dns.Msg) {
			r.Rcode = dns.RcodeNameError
			r.Ns = []dns.RR{rr(soa)}
		}},
		{"NODATA", dns.TypeAAAA, func(r *dns.Msg) { r.Ns = []dns.RR{rr(soa)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := query("www.example.", tc.qtype, true, false)
			r := new(dns.Msg).SetReply(q)
			r.RecursionAvailable = true
			tc.build(r)
			k := keyOf(resolver.NewRequest(q))
			s := ttls{max: 86400, negative: 86400}.prepare(&k, r)
			if s.blob == nil || s.rare != nil {
				t.Fatalf("prepared %+v: want it compact", s)
			}
			c := s.view()
			if c.wire == nil || c.rrs != nil {
				t.Fatalf("viewed %+v: want it compact", c)
			}
			// The same answer with its records kept as dns.RRs: as
			// stored, TTLs clamped.
			a := c
			an, ns, ex := c.sections()
			a.rrs = &rrForm{an, ns, ex}
			a.wire = nil
			if len(an)+len(ns)+len(ex) != c.records() {
				t.Fatalf("%d records unpacked, %d stored", len(an)+len(ns)+len(ex), c.records())
			}
			for _, m := range []*dns.Msg{q, query("WWW.Example.", tc.qtype, false, false)} {
				ask := resolver.NewRequest(m)
				for _, v := range []struct {
					age   uint32
					stale bool
				}{{0, false}, {40, false}, {0, true}} {
					want := a.render(ask, &k, v.age, v.stale)
					got := c.render(ask, &k, v.age, v.stale)
					if got.String() != want.String() {
						t.Errorf("age %d stale %v, %s: compact renders\n%v\nwant\n%v", v.age, v.stale, ask.Name, got, want)
					}
				}
			}
			// Renders are the caller's: changing one changes no other.
			req := resolver.NewRequest(q)
			m := c.render(req, &k, 0, false)
			for _, rr := range m.Answer {
				if a, ok := rr.(*dns.A); ok {
					a.A = net.IPv4(198, 51, 100, 1)
				}
				rr.Header().Ttl = 7
			}
			if again := c.render(req, &k, 0, false); again.String() != a.render(req, &k, 0, false).String() {
				t.Errorf("a changed render showed in the next:\n%v", again)
			}
		})
	}
}
