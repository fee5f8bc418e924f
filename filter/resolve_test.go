package filter

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// cnameChain returns an upstream answer: q's name → each of names in
// turn by CNAME, then an A record for the last.
func cnameChain(names ...string) func(q *dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		owner := q.Question[0].Name
		for _, n := range names {
			m.Answer = append(m.Answer, &dns.CNAME{
				Hdr:    dns.RR_Header{Name: owner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60},
				Target: dns.Fqdn(n),
			})
			owner = dns.Fqdn(n)
		}
		m.Answer = append(m.Answer, answerA(q, owner, "192.0.2.7").Answer...)
		return m
	}
}

func TestCNAMECloaking(t *testing.T) {
	dir := t.TempDir()
	f, rec := newFilter(t, Options{
		Blocklists: []string{writeFile(t, dir, "block.txt", "tracker.example.net\n")},
		Allowlists: []string{writeFile(t, dir, "allow.txt", "shop.example.com\nok.tracker.example.net\n")},
	})
	for _, tc := range []struct {
		name    string
		chain   []string
		blocked bool
	}{
		{"metrics.example.com", []string{"metrics.example.com.cdn.test", "x.tracker.example.net"}, true},
		{"metrics.example.com", []string{"X.Tracker.Example.NET"}, true},
		{"www.example.com", []string{"www.example.com.cdn.test"}, false},
		{"www.example.com", []string{"ok.tracker.example.net"}, false},                       // the target is allowed
		{"shop.example.com", []string{"tracker.example.net"}, false},                         // the query name is allowed
		{"www.example.com", []string{"ok.tracker.example.net", "tracker.example.net"}, true}, // allowing one target allows only it
	} {
		t.Run(tc.name+"→"+strings.Join(tc.chain, "→"), func(t *testing.T) {
			up := &upstream{answer: cnameChain(tc.chain...)}
			m := ask(t, f, up, netip.Addr{}, tc.name, dns.TypeA)
			if isBlocked(m) != tc.blocked {
				t.Fatalf("blocked %v, want %v: %v", isBlocked(m), tc.blocked, m)
			}
			if tc.blocked && (m.Rcode != dns.RcodeNameError || len(m.Answer) != 0) {
				t.Fatalf("want NXDOMAIN and no answer: %v", m)
			}
			if !tc.blocked && len(m.Answer) != len(tc.chain)+1 {
				t.Fatalf("answer changed: %v", m)
			}
		})
	}
	s := f.Stats()
	if s.Blocked != 3 || s.Cloaked != 3 || s.Lists[0].Blocked != 3 {
		t.Errorf("stats %+v: want 3 blocked, all cloaked, all by the blocklist", s)
	}
	logs := rec.Find("blocked")
	if len(logs) != 3 || logs[0]["cname"].String() != "x.tracker.example.net" || logs[0]["rule"].String() != "tracker.example.net" {
		t.Errorf("debug logs %v: want the CNAME target and the rule", logs)
	}
}

func TestBlockResponses(t *testing.T) {
	dir := t.TempDir()
	list := writeFile(t, dir, "block.txt", "||ads.example.com^\n")
	for _, tc := range []struct {
		mode   string
		qtype  uint16
		rcode  int
		answer string // the one answer record's data
		soa    bool
	}{
		{"", dns.TypeA, dns.RcodeNameError, "", true},
		{BlockNXDomain, dns.TypeAAAA, dns.RcodeNameError, "", true},
		{BlockNoData, dns.TypeA, dns.RcodeSuccess, "", true},
		{BlockRefused, dns.TypeA, dns.RcodeRefused, "", false},
		{BlockNullIP, dns.TypeA, dns.RcodeSuccess, "0.0.0.0", false},
		{BlockNullIP, dns.TypeAAAA, dns.RcodeSuccess, "::", false},
		{BlockNullIP, dns.TypeMX, dns.RcodeSuccess, "", true},
	} {
		t.Run(tc.mode+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			f, _ := newFilter(t, Options{Blocklists: []string{list}, BlockResponse: tc.mode})
			up := &upstream{}
			m := ask(t, f, up, netip.Addr{}, "www.ads.example.com", tc.qtype)
			if up.queries.Load() != 0 {
				t.Fatal("a blocked query went upstream")
			}
			checkBlock(t, m, tc.rcode, tc.answer, tc.soa)
			if tc.soa && m.Ns[0].Header().Name != "ads.example.com." {
				t.Errorf("SOA owner %s, want the rule's name", m.Ns[0].Header().Name)
			}
			if e := isBlocked(m); e && !strings.Contains(m.IsEdns0().Option[0].(*dns.EDNS0_EDE).ExtraText, "ads.example.com") {
				t.Errorf("EDE text does not name the rule: %v", m.IsEdns0())
			}
		})
	}
	if _, err := New(Options{BlockResponse: "drop"}); err == nil || !strings.Contains(err.Error(), "drop") {
		t.Fatalf("New with block_response drop: %v", err)
	}
}

// checkBlock checks that m is a block answer with rcode, and the one
// answer record's data when answer is not empty; soa tells whether an SOA
// must be in the authority section.
func checkBlock(t *testing.T, m *dns.Msg, rcode int, answer string, soa bool) {
	t.Helper()
	if !isBlocked(m) {
		t.Fatalf("no EDE 15 (Blocked): %v", m)
	}
	if m.Rcode != rcode || m.Authoritative || !m.RecursionAvailable {
		t.Fatalf("rcode %s, AA %v, RA %v; want %s, not authoritative, RA", dns.RcodeToString[m.Rcode], m.Authoritative, m.RecursionAvailable, dns.RcodeToString[rcode])
	}
	switch {
	case answer == "" && len(m.Answer) != 0:
		t.Fatalf("answer %v, want none", m.Answer)
	case answer != "" && (len(m.Answer) != 1 || !strings.HasSuffix(m.Answer[0].String(), "\t"+answer) || m.Answer[0].Header().Ttl != blockTTL):
		t.Fatalf("answer %v, want one record %s with TTL %d", m.Answer, answer, blockTTL)
	}
	if _, ok := firstSOA(m); ok != soa {
		t.Fatalf("authority %v: SOA %v, want %v", m.Ns, ok, soa)
	}
}

func firstSOA(m *dns.Msg) (*dns.SOA, bool) {
	if len(m.Ns) == 0 {
		return nil, false
	}
	s, ok := m.Ns[0].(*dns.SOA)
	return s, ok
}

func TestGroups(t *testing.T) {
	dir := t.TempDir()
	ads := writeFile(t, dir, "ads.txt", "ads.example.com\n")
	adult := writeFile(t, dir, "adult.txt", "adult.example.com\n")
	allow := writeFile(t, dir, "allow.txt", "ads.example.com\n")
	f, rec := newFilter(t, Options{
		Blocklists: []string{ads},
		Groups: []Group{
			{Name: "kids", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.128/25"), netip.MustParsePrefix("fd00:1::/64")}, Blocklists: []string{ads, adult}},
			{Name: "tv", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.50/32")}},
			{Name: "kids again", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.200/32")}}, // shadowed by kids
			{Name: "work", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.2.0/24")}, Blocklists: []string{ads}, Allowlists: []string{allow}},
		},
	})
	up := &upstream{}
	for _, tc := range []struct {
		client, name string
		blocked      bool
	}{
		{"", "ads.example.com", true}, // no client known: the global lists
		{"", "adult.example.com", false},
		{"192.168.1.10", "ads.example.com", true},
		{"192.168.1.10", "adult.example.com", false},
		{"192.168.1.130", "ads.example.com", true},
		{"192.168.1.130", "adult.example.com", true},
		{"192.168.1.200", "adult.example.com", true}, // the first group that holds it
		{"fd00:1::5", "adult.example.com", true},
		{"fd00:2::5", "adult.example.com", false},
		{"192.168.1.50", "ads.example.com", false}, // a group without lists is not filtered
		{"192.168.2.9", "ads.example.com", false},  // its allowlist
	} {
		t.Run(tc.client+"/"+tc.name, func(t *testing.T) {
			var client netip.Addr
			if tc.client != "" {
				client = netip.MustParseAddr(tc.client)
			}
			if m := ask(t, f, up, client, tc.name, dns.TypeA); isBlocked(m) != tc.blocked {
				t.Fatalf("blocked %v, want %v", isBlocked(m), tc.blocked)
			}
		})
	}
	if n := len(f.Stats().Lists); n != 3 {
		t.Errorf("%d lists loaded, want 3: a list named twice is loaded once", n)
	}
	found := false
	for _, l := range rec.Find("blocked") {
		found = found || l["group"].String() == "kids" && l["client"].String() == "192.168.1.130" && l["list"].String() == adult
	}
	if !found {
		t.Errorf("no debug log names the group, client and list: %v", rec.Find("blocked"))
	}
}

func TestGroupsInvalid(t *testing.T) {
	p := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for name, g := range map[string][]Group{
		"no name":         {{Clients: p}},
		"same name":       {{Name: "a", Clients: p}, {Name: "a", Clients: p}},
		"no clients":      {{Name: "a"}},
		"bad prefix":      {{Name: "a", Clients: []netip.Prefix{{}}}},
		"bad list URL":    {{Name: "a", Clients: p, Blocklists: []string{"ftp://example.com/list"}}},
		"names, no Namer": {{Name: "a", Names: []string{"kids-tablet"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(Options{Groups: g}); err == nil || !strings.Contains(err.Error(), "groups[") {
				t.Fatalf("New: %v, want an error naming the group", err)
			}
		})
	}
}

func TestDebugLog(t *testing.T) {
	dir := t.TempDir()
	block := writeFile(t, dir, "block.txt", "|ads.example.com^\n*.track.example.com\n@@||ok.track.example.com^\n")
	f, rec := newFilter(t, Options{Blocklists: []string{block}})
	up := &upstream{}
	ask(t, f, up, netip.MustParseAddr("192.168.1.9"), "ADS.example.com", dns.TypeA)
	ask(t, f, up, netip.Addr{}, "x.track.example.com", dns.TypeAAAA)
	ask(t, f, up, netip.Addr{}, "ok.track.example.com", dns.TypeA)
	blocked := rec.Find("blocked")
	if len(blocked) != 2 {
		t.Fatalf("%d blocked logs, want 2", len(blocked))
	}
	for i, want := range []map[string]string{
		{"qname": "ADS.example.com.", "qtype": "A", "list": block, "rule": "|ads.example.com^", "client": "192.168.1.9", "level": "DEBUG"},
		{"qname": "x.track.example.com.", "qtype": "AAAA", "list": block, "rule": "*.track.example.com", "level": "DEBUG"},
	} {
		for k, v := range want {
			if got := blocked[i][k].String(); got != v {
				t.Errorf("blocked log %d: %s=%q, want %q", i, k, got, v)
			}
		}
	}
	if allowed := rec.Find("allowed"); len(allowed) != 1 || allowed[0]["rule"].String() != "@@ok.track.example.com" {
		t.Errorf("allowed logs %v", allowed)
	}
}

func TestNoEDEWithoutEDNS(t *testing.T) {
	f, _ := newFilter(t, Options{Blocklists: []string{writeFile(t, t.TempDir(), "b.txt", "ads.example.com\n")}})
	q := new(dns.Msg).SetQuestion("ads.example.com.", dns.TypeA)
	m, err := resolver.ResolveMsg(t.Context(), f.Middleware()(&upstream{}), q)
	if err != nil || m.Rcode != dns.RcodeNameError || m.IsEdns0() != nil {
		t.Fatalf("err %v, answer %v: want NXDOMAIN without OPT", err, m)
	}
}
