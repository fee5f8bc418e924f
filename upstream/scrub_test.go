package upstream

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// rrs parses records in zone-file form.
func rrs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}

func TestScrub(t *testing.T) {
	const opt = ". 0 CLASS1232 OPT" // an OPT record, buffer size 1232
	tests := []struct {
		name       string
		qname      string
		qtype      uint16
		answer, ns []string
		extra      []string
		wantAnswer []int // indexes kept
		wantNs     []int
		wantExtra  []int
	}{
		{name: "plain answer kept", qname: "example.com.", qtype: dns.TypeA,
			answer:     []string{"example.com. 300 IN A 192.0.2.1", "Example.COM. 300 IN A 192.0.2.2"},
			wantAnswer: []int{0, 1}},
		{name: "another name's record dropped", qname: "example.com.", qtype: dns.TypeA,
			answer: []string{"example.com. 300 IN A 192.0.2.1", "bank.example. 300 IN A 203.0.113.66",
				"sub.example.com. 300 IN A 192.0.2.9"},
			wantAnswer: []int{0}},
		{name: "another type at the name dropped", qname: "example.com.", qtype: dns.TypeA,
			answer:     []string{"example.com. 300 IN A 192.0.2.1", "example.com. 300 IN TXT \"planted\"", "example.com. 300 IN AAAA 2001:db8::1"},
			wantAnswer: []int{0}},
		{name: "CNAME chain out of order kept, stray dropped", qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"cdn.example.net. 300 IN A 192.0.2.7", "evil.example. 300 IN A 203.0.113.1",
				"www.example.com. 300 IN CNAME edge.example.org.", "edge.example.org. 300 IN CNAME cdn.example.net.",
				"other.example.org. 300 IN CNAME cdn.example.net."},
			wantAnswer: []int{0, 2, 3}},
		{name: "CNAME chain longer than scrub keeps on its stack", qname: "c0.example.", qtype: dns.TypeA,
			answer: []string{"c0.example. 60 IN CNAME c1.example.", "c1.example. 60 IN CNAME c2.example.",
				"c2.example. 60 IN CNAME c3.example.", "c3.example. 60 IN CNAME c4.example.",
				"c4.example. 60 IN CNAME c5.example.", "c5.example. 60 IN A 192.0.2.5", "c9.example. 60 IN A 203.0.113.9"},
			wantAnswer: []int{0, 1, 2, 3, 4, 5}},
		{name: "CNAME loop ends", qname: "a.example.", qtype: dns.TypeA,
			answer:     []string{"a.example. 1 IN CNAME b.example.", "b.example. 1 IN CNAME a.example."},
			wantAnswer: []int{0, 1}},
		{name: "DNAME and its CNAME kept", qname: "www.old.example.", qtype: dns.TypeA,
			answer: []string{"old.example. 300 IN DNAME new.example.", "www.old.example. 300 IN CNAME www.new.example.",
				"www.new.example. 300 IN A 192.0.2.3", "x.example. 300 IN DNAME y.example."},
			wantAnswer: []int{0, 1, 2}},
		{name: "DNAME without its CNAME still leads on", qname: "www.old.example.", qtype: dns.TypeA,
			answer:     []string{"old.example. 300 IN DNAME new.example.", "www.new.example. 300 IN A 192.0.2.3"},
			wantAnswer: []int{0, 1}},
		{name: "CNAME asked for: not followed", qname: "www.example.com.", qtype: dns.TypeCNAME,
			answer:     []string{"www.example.com. 300 IN CNAME edge.example.org.", "edge.example.org. 300 IN A 192.0.2.7"},
			wantAnswer: []int{0}},
		{name: "ANY: every type at the name", qname: "example.com.", qtype: dns.TypeANY,
			answer:     []string{"example.com. 300 IN A 192.0.2.1", "example.com. 300 IN TXT \"v=spf1\"", "other.com. 300 IN A 192.0.2.1"},
			wantAnswer: []int{0, 1}},
		{name: "signatures follow what they cover", qname: "example.com.", qtype: dns.TypeA,
			answer: []string{"example.com. 300 IN A 192.0.2.1",
				"example.com. 300 IN RRSIG A 13 2 300 20260101000000 20250101000000 1 example.com. AAAA",
				"example.com. 300 IN RRSIG TXT 13 2 300 20260101000000 20250101000000 1 example.com. AAAA"},
			wantAnswer: []int{0, 1}},
		{name: "negative answer: SOA and proofs kept, others dropped", qname: "nope.example.com.", qtype: dns.TypeA,
			ns: []string{"example.com. 300 IN SOA ns1.example.com. host.example.com. 1 2 3 4 5",
				"bank.example. 300 IN SOA ns1.bank.example. host.bank.example. 1 2 3 4 5",
				"a.example.com. 300 IN NSEC z.example.com. A",
				"example.com. 300 IN TXT \"planted\"",
				"sub.nope.example.com. 300 IN NS ns.evil.example."},
			wantNs: []int{0, 2}},
		{name: "NS in authority, its glue kept, other additional dropped", qname: "www.example.com.", qtype: dns.TypeA,
			answer: []string{"www.example.com. 300 IN A 192.0.2.1"},
			ns:     []string{"example.com. 300 IN NS ns1.example.com.", "evil.example. 300 IN NS ns.evil.example."},
			extra: []string{"ns1.example.com. 300 IN A 192.0.2.53", "ns.evil.example. 300 IN A 203.0.113.53",
				"bank.example. 300 IN A 203.0.113.66", opt},
			wantAnswer: []int{0}, wantNs: []int{0}, wantExtra: []int{0, 3}},
		{name: "MX targets' addresses kept", qname: "example.com.", qtype: dns.TypeMX,
			answer:     []string{"example.com. 300 IN MX 10 mail.example.com."},
			extra:      []string{"Mail.Example.com. 300 IN AAAA 2001:db8::25", "mail.example.com. 300 IN TXT \"x\"", "www.example.com. 300 IN A 192.0.2.1"},
			wantAnswer: []int{0}, wantExtra: []int{0}},
		{name: "root NS probe with glue", qname: ".", qtype: dns.TypeNS,
			answer:     []string{". 518400 IN NS a.root-servers.net.", ". 518400 IN NS b.root-servers.net."},
			extra:      []string{"a.root-servers.net. 518400 IN A 198.41.0.4", "b.root-servers.net. 518400 IN AAAA 2801:1b8:10::b"},
			wantAnswer: []int{0, 1}, wantExtra: []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &dns.Msg{Answer: rrs(t, tt.answer...), Ns: rrs(t, tt.ns...), Extra: rrs(t, tt.extra...)}
			orig := m.Copy()
			q := dns.Question{Name: tt.qname, Qtype: tt.qtype, Qclass: dns.ClassINET}
			scrub(m, q)
			for _, s := range []struct {
				name      string
				got, from []dns.RR
				want      []int
			}{{"answer", m.Answer, orig.Answer, tt.wantAnswer}, {"authority", m.Ns, orig.Ns, tt.wantNs},
				{"additional", m.Extra, orig.Extra, tt.wantExtra}} {
				var want []string
				for _, i := range s.want {
					want = append(want, s.from[i].String())
				}
				var got []string
				for _, rr := range s.got {
					got = append(got, rr.String())
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s:\n\t%s\nwant\n\t%s", s.name, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
				}
			}
		})
	}
}

// TestScrubRealAnswers: Unbound's answers lose nothing.
func TestScrubRealAnswers(t *testing.T) {
	for i, b := range answerSeeds(t)[:len(realAnswers)] {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		before := m.String()
		scrub(m, m.Question[0])
		if m.String() != before {
			t.Errorf("%s: scrubbed\n%s\nto\n%s", realAnswers[i].name, before, m)
		}
	}
}

// FuzzScrub scrubs arbitrary answers for an arbitrary question and checks
// the result against checkScrubbed, written apart from scrub; that
// scrubbing twice changes nothing more; and that the records that answer
// the question directly (its name and type) are never dropped.
func FuzzScrub(f *testing.F) {
	for _, seed := range answerSeeds(f) {
		f.Add(seed, "example.com.", dns.TypeA)
	}
	chain := &dns.Msg{Answer: rrs(f, "www.old.example. 1 IN CNAME x.new.example.", "old.example. 1 IN DNAME new.example.",
		"x.new.example. 1 IN A 192.0.2.1", "y.example. 1 IN A 192.0.2.2"),
		Ns:    rrs(f, "example. 1 IN NS ns.example.", "z. 1 IN NS ns.z."),
		Extra: rrs(f, "ns.example. 1 IN A 192.0.2.53", "ns.z. 1 IN A 192.0.2.54")}
	chain.Response = true
	b, err := chain.Pack()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, "www.old.example.", dns.TypeA)
	f.Add(b, "www.old.example.", dns.TypeCNAME)
	f.Fuzz(func(t *testing.T, answer []byte, name string, qtype uint16) {
		if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(name) {
			return
		}
		m := new(dns.Msg)
		if m.Unpack(answer) != nil {
			return
		}
		q := dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}
		orig := shallowCopy(m)
		scrub(m, q)
		checkScrubbed(t, m, orig, q)
		once := m.String()
		scrub(m, q)
		if m.String() != once {
			t.Fatalf("scrubbing again changed\n%s\nto\n%s", once, m)
		}
		for _, rr := range orig.Answer {
			if h := rr.Header(); h.Rrtype == qtype && strings.EqualFold(h.Name, name) && !slices.ContainsFunc(m.Answer, func(k dns.RR) bool { return k == rr }) {
				t.Fatalf("dropped %v, which answers %v", rr, q)
			}
		}
	})
}

// shallowCopy copies m's sections but not their records, so that records
// compare by identity.
func shallowCopy(m *dns.Msg) *dns.Msg {
	return &dns.Msg{Answer: slices.Clone(m.Answer), Ns: slices.Clone(m.Ns), Extra: slices.Clone(m.Extra)}
}

// checkScrubbed checks that every record left in m, scrubbed from orig
// for q, belongs there, by rules written apart from scrub's: the chain is
// found by following records from the query name, one step at a time,
// and each section kept is a subsequence of the original's.
func checkScrubbed(t *testing.T, m, orig *dns.Msg, q dns.Question) {
	t.Helper()
	chain := map[string]bool{strings.ToLower(q.Name): true}
	follow := q.Qtype != dns.TypeCNAME && q.Qtype != dns.TypeDNAME && q.Qtype != dns.TypeANY
	for changed := follow; changed; {
		changed = false
		for _, rr := range orig.Answer {
			var to string
			switch rr := rr.(type) {
			case *dns.CNAME:
				if chain[strings.ToLower(rr.Hdr.Name)] {
					to = strings.ToLower(rr.Target)
				}
			case *dns.DNAME:
				for n := range chain {
					owner := strings.ToLower(rr.Hdr.Name)
					if labels := dns.SplitDomainName(n); dns.IsSubDomain(owner, n) && n != owner {
						prefix := labels[:len(labels)-dns.CountLabel(owner)]
						to = strings.ToLower(dns.Fqdn(strings.Join(append(prefix, dns.SplitDomainName(rr.Target)...), ".")))
						break
					}
				}
			}
			if to != "" && !chain[to] {
				chain[to], changed = true, true
			}
		}
	}
	covered := func(rr dns.RR) uint16 {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.Hdr.Rrtype != q.Qtype {
			return sig.TypeCovered
		}
		return rr.Header().Rrtype
	}
	parentOfChain := func(name string) bool {
		for n := range chain {
			if dns.IsSubDomain(name, n) {
				return true
			}
		}
		return false
	}
	targets := map[string]bool{}
	for _, rr := range slices.Concat(m.Answer, m.Ns) {
		switch rr := rr.(type) {
		case *dns.NS:
			targets[strings.ToLower(rr.Ns)] = true
		case *dns.MX:
			targets[strings.ToLower(rr.Mx)] = true
		case *dns.SRV:
			targets[strings.ToLower(rr.Target)] = true
		case *dns.SVCB:
			targets[strings.ToLower(rr.Target)] = true
		case *dns.HTTPS:
			targets[strings.ToLower(rr.Target)] = true
		}
	}
	for _, s := range []struct {
		name       string
		kept, from []dns.RR
		ok         func(rr dns.RR) bool
	}{
		{"answer", m.Answer, orig.Answer, func(rr dns.RR) bool {
			t, owner := covered(rr), strings.ToLower(rr.Header().Name)
			if t == dns.TypeDNAME {
				return parentOfChain(owner)
			}
			return chain[owner] && (q.Qtype == dns.TypeANY || t == q.Qtype || t == dns.TypeCNAME)
		}},
		{"authority", m.Ns, orig.Ns, func(rr dns.RR) bool {
			switch covered(rr) {
			case dns.TypeNSEC, dns.TypeNSEC3:
				return true
			case dns.TypeSOA, dns.TypeNS, dns.TypeDS:
				return parentOfChain(rr.Header().Name)
			}
			return false
		}},
		{"additional", m.Extra, orig.Extra, func(rr dns.RR) bool {
			if _, ok := rr.(*dns.OPT); ok {
				return true
			}
			switch covered(rr) {
			case dns.TypeA, dns.TypeAAAA:
				return targets[strings.ToLower(rr.Header().Name)]
			}
			return false
		}},
	} {
		i := 0
		for _, rr := range s.kept {
			if !s.ok(rr) {
				t.Fatalf("%s keeps %v, which does not belong to %v", s.name, rr, q)
			}
			for i < len(s.from) && s.from[i] != rr {
				i++
			}
			if i == len(s.from) {
				t.Fatalf("%s: %v is not from the original, or out of order", s.name, rr)
			}
			i++
		}
	}
}
