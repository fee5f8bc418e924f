package filter

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/resolver"
)

// fastStub is a next resolver with a fast path: it answers every packed
// query with an A record, behind a CNAME to cname when that is set, unless
// the query's Check refuses that answer.
type fastStub struct {
	cname string
	calls int
}

func (s *fastStub) Resolve(context.Context, *dns.Msg) (*dns.Msg, error) {
	panic("not used: the tests call ResolvePacked")
}

func (s *fastStub) ResolvePacked(dst []byte, q *resolver.Packed, info *resolver.Info) ([]byte, bool) {
	s.calls++
	m := new(dns.Msg).SetQuestion(q.Name, q.Qtype)
	m.Response = true
	owner := q.Name
	if s.cname != "" {
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: s.cname})
		owner = s.cname
	}
	m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1).To4()})
	m.Compress = true
	wire, err := m.Pack()
	if err != nil {
		panic(err)
	}
	if q.Check != nil && !q.Check.Allows(wire) { // as resolver.Fast requires
		return dst, false
	}
	info.SetCached(false)
	return append(dst, wire...), true
}

// TestResolvePacked: the filter passes on to a fast next only what it
// would pass in Resolve, for the client asking; it declines local names,
// names its lists block, and answers whose CNAME chain they block.
func TestResolvePacked(t *testing.T) {
	dir := t.TempDir()
	block := writeFile(t, dir, "block.txt", "ads.example.com\ntracker.example.net\n")
	allow := writeFile(t, dir, "allow.txt", "ok.example.com\n")
	kids := writeFile(t, dir, "kids.txt", "games.example.com\n")
	f, _ := newFilter(t, Options{
		Blocklists: []string{block},
		Allowlists: []string{allow},
		LocalRecords: map[string][]netip.Addr{
			"nas.home.arpa.": {netip.MustParseAddr("192.168.1.2")},
			"printer.lan.":   {netip.MustParseAddr("192.168.1.3")},
		},
		Groups: []Group{{Name: "kids", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.128/25")}, Blocklists: []string{block, kids}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	adult, child := netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.1.130")
	for _, tc := range []struct {
		name   string
		client netip.Addr
		cname  string
		want   bool
	}{
		{"www.example.com.", adult, "", true},
		{"WWW.Example.COM.", child, "", true},
		{"ads.example.com.", adult, "", false},
		{"sub.ADS.example.com.", adult, "", false},
		{"games.example.com.", adult, "", true},
		{"games.example.com.", child, "", false},
		{"nas.home.arpa.", adult, "", false},
		{"printer.lan.", adult, "", false},
		{"other.home.arpa.", adult, "", false},
		{"4.1.168.192.in-addr.arpa.", adult, "", false},
		{"localhost.", adult, "", false},
		{"cdn.example.org.", adult, "edge.tracker.example.net.", false},
		{"cdn.example.org.", adult, "edge.fine.example.net.", true},
		{"ok.example.com.", adult, "x.tracker.example.net.", true}, // allowed with its CNAMEs
	} {
		next := &fastStub{cname: tc.cname}
		r := f.Middleware()(next).(resolver.Fast)
		q := packedQuery(t, tc.name, tc.client)
		var info resolver.Info
		out, ok := r.ResolvePacked([]byte{1, 2}, q, &info)
		if ok != tc.want {
			t.Errorf("%s from %s (CNAME %q): answered %v, want %v", tc.name, tc.client, tc.cname, ok, tc.want)
			continue
		}
		if !ok && (len(out) != 2 || info != (resolver.Info{})) {
			t.Errorf("%s: declined but left %d bytes, info %+v", tc.name, len(out)-2, info)
		}
		if ok && (len(out) <= 2 || !info.Cached) {
			t.Errorf("%s: answered %d bytes, info %+v", tc.name, len(out)-2, info)
		}
	}
	if st := f.Stats(); st.Blocked != 0 || st.Local != 0 || st.Cloaked != 0 {
		t.Errorf("the fast path counted what it declined: %+v", st)
	}

	// Not fast next, or Debug logs: nothing is passed on.
	slow := f.Middleware()(resolver.Func(func(context.Context, *dns.Msg) (*dns.Msg, error) { return nil, nil }))
	if _, ok := slow.(resolver.Fast); ok {
		t.Error("the filter offers a fast path in front of a next that has none")
	}
	debug, _ := newFilter(t, Options{Blocklists: []string{block}})
	if _, ok := debug.Middleware()(&fastStub{}).(resolver.Fast).ResolvePacked(nil, packedQuery(t, "www.example.com.", adult), &resolver.Info{}); ok {
		t.Error("answered with Debug logs on")
	}
}

func packedQuery(t *testing.T, name string, client netip.Addr) *resolver.Packed {
	t.Helper()
	raw, err := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
	if err != nil {
		t.Fatal(err)
	}
	return &resolver.Packed{Wire: raw, QuestionEnd: len(raw), Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET,
		RD: true, Limit: 512, Client: client}
}

// TestCachedNotServedAcrossGroups: through the listener, with the cache
// behind the filter, a name cached for a client whose lists allow it is
// still blocked for a client whose group blocks it, and a name blocked
// by a CNAME in the cached answer stays blocked on every hit.
func TestCachedNotServedAcrossGroups(t *testing.T) {
	dir := t.TempDir()
	block := writeFile(t, dir, "block.txt", "tracker.example.net\n")
	kids := writeFile(t, dir, "kids.txt", "games.example.com\n")
	f, _ := newFilter(t, Options{
		Blocklists: []string{block},
		Groups:     []Group{{Name: "kids", Clients: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, Blocklists: []string{block, kids}}},
		Logger:     slog.New(slog.DiscardHandler),
	})
	up := &upstream{answer: func(q *dns.Msg) *dns.Msg {
		if q.Question[0].Name == "cdn.example.org." {
			m := answerA(q, "edge.tracker.example.net.", "192.0.2.9")
			m.Answer = append([]dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: "cdn.example.org.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60},
				Target: "edge.tracker.example.net."}}, m.Answer...)
			return m
		}
		return answerA(q, q.Question[0].Name, "192.0.2.1")
	}}
	c := cache.New(cache.Options{})
	t.Cleanup(c.Close)
	s := startListener(t, resolver.Chain(up, f.Middleware(), c.Middleware()), slog.New(slog.DiscardHandler))
	askFrom := func(local, name string) *dns.Msg {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(local)}, Timeout: pollTimeout}
		conn, err := d.Dial("udp", s.UDPAddrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		co := &dns.Conn{Conn: conn}
		q := new(dns.Msg).SetQuestion(name, dns.TypeA)
		q.SetEdns0(1232, false)
		conn.SetDeadline(time.Now().Add(pollTimeout))
		if err := co.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		m, err := co.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for range 3 {
		if m := askFrom("127.0.0.1", "games.example.com."); isBlocked(m) {
			t.Fatal("games.example.com blocked for a client outside the group")
		}
		if m := askFrom("127.0.0.2", "games.example.com."); !isBlocked(m) {
			t.Fatalf("games.example.com, cached, served to the kids group: %v", m)
		}
		for _, client := range []string{"127.0.0.1", "127.0.0.2"} {
			if m := askFrom(client, "cdn.example.org."); !isBlocked(m) {
				t.Fatalf("cdn.example.org (CNAME to a blocked name) served from the cache to %s: %v", client, m)
			}
		}
	}
	if st := c.Stats(); st.Hits == 0 {
		t.Errorf("no cache hit: %+v", st)
	}
	if n := up.queries.Load(); n != 2 {
		t.Errorf("%d upstream queries, want 2 (one per name)", n)
	}
}

// TestBlockedCNAMECountedOnce: a cached answer whose CNAME chain the
// lists block is declined by the cache's fast path before it counts a
// hit, so the query that then takes the usual path is counted once.
func TestBlockedCNAMECountedOnce(t *testing.T) {
	dir := t.TempDir()
	block := writeFile(t, dir, "block.txt", "tracker.example.net\n")
	f, _ := newFilter(t, Options{Blocklists: []string{block}, Logger: slog.New(slog.DiscardHandler)})
	up := &upstream{answer: func(q *dns.Msg) *dns.Msg {
		m := answerA(q, "edge.tracker.example.net.", "192.0.2.9")
		m.Answer = append([]dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60},
			Target: "edge.tracker.example.net."}}, m.Answer...)
		return m
	}}
	c := cache.New(cache.Options{})
	t.Cleanup(c.Close)
	chain := resolver.Chain(up, f.Middleware(), c.Middleware())
	adult := netip.MustParseAddr("192.168.1.10")
	ask := func() *dns.Msg {
		t.Helper()
		q := new(dns.Msg).SetQuestion("cdn.example.org.", dns.TypeA)
		q.SetEdns0(1232, false) // the EDE that marks a block goes to EDNS clients
		m, err := chain.Resolve(resolver.WithClient(context.Background(), adult), q)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := ask(); !isBlocked(m) { // fills the cache
		t.Fatalf("not blocked: %v", m)
	}
	var info resolver.Info
	if _, ok := chain.(resolver.Fast).ResolvePacked(nil, packedQuery(t, "cdn.example.org.", adult), &info); ok {
		t.Fatal("the fast path answered a blocked CNAME chain")
	}
	if m := ask(); !isBlocked(m) {
		t.Fatalf("not blocked: %v", m)
	}
	if st := c.Stats(); st.Hits != 1 {
		t.Errorf("%d cache hits for one hit declined by the fast path and one answered the usual way, want 1", st.Hits)
	}
}
