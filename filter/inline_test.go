package filter

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/resolver"
)

// wireStub is a next resolver that answers every request at once, Inline
// or not, in wire form as a cache hit does: an A record, behind a CNAME
// to cname when that is set.
type wireStub struct {
	cname string
	calls int
}

func (s *wireStub) Resolve(_ context.Context, req *resolver.Request) (resolver.Response, error) {
	s.calls++
	m := new(dns.Msg).SetQuestion(req.Name, req.Qtype)
	m.Response = true
	owner := req.Name
	if s.cname != "" {
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: req.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: s.cname})
		owner = s.cname
	}
	m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1).To4()})
	m.Compress = true
	wire, err := m.Pack()
	if err != nil {
		panic(err)
	}
	req.Info.SetCached(false)
	return resolver.Response{Wire: wire}, nil
}

// waiting is a next resolver that, like the selector, has nothing to
// give an Inline request.
type waiting struct{ calls int }

func (w *waiting) Resolve(context.Context, *resolver.Request) (resolver.Response, error) {
	w.calls++
	return resolver.Response{}, resolver.ErrWouldWait
}

// TestInlineRequests: the filter answers local and blocked names at once,
// Inline or not, passes the others on to next for the client asking, and
// judges a wire answer's CNAME chain as it judges a message's. When next
// would wait it passes resolver.ErrWouldWait back having counted,
// recorded and logged nothing.
func TestInlineRequests(t *testing.T) {
	dir := t.TempDir()
	block := writeFile(t, dir, "block.txt", "ads.example.com\ntracker.example.net\n")
	allow := writeFile(t, dir, "allow.txt", "ok.example.com\n")
	kids := writeFile(t, dir, "kids.txt", "games.example.com\n")
	rec := &logRecorder{}
	f, _ := newFilter(t, Options{
		Blocklists: []string{block},
		Allowlists: []string{allow},
		LocalRecords: map[string][]netip.Addr{
			"nas.home.arpa.": {netip.MustParseAddr("192.168.1.2")},
			"printer.lan.":   {netip.MustParseAddr("192.168.1.3")},
		},
		Groups: []Group{{Name: "kids", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.128/25")}, Blocklists: []string{block, kids}}},
		Logger: slog.New(rec),
	})
	adult, child := netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.1.130")
	for _, tc := range []struct {
		name    string
		client  netip.Addr
		cname   string
		answers string // "next", "blocked" or "local"
	}{
		{"www.example.com.", adult, "", "next"},
		{"WWW.Example.COM.", child, "", "next"},
		{"ads.example.com.", adult, "", "blocked"},
		{"sub.ADS.example.com.", adult, "", "blocked"},
		{"games.example.com.", adult, "", "next"},
		{"games.example.com.", child, "", "blocked"},
		{"nas.home.arpa.", adult, "", "local"},
		{"printer.lan.", adult, "", "local"},
		{"other.home.arpa.", adult, "", "local"},
		{"4.1.168.192.in-addr.arpa.", adult, "", "local"},
		{"localhost.", adult, "", "local"},
		{"cdn.example.org.", adult, "edge.tracker.example.net.", "blocked"},
		{"cdn.example.org.", adult, "edge.fine.example.net.", "next"},
		{"ok.example.com.", adult, "x.tracker.example.net.", "next"}, // allowed with its CNAMEs
	} {
		req := inlineRequest(t, tc.name, tc.client)
		resp, err := f.Middleware()(&wireStub{cname: tc.cname}).Resolve(context.Background(), req)
		var got string
		switch m, _ := resp.Unpack(); {
		case err != nil || m == nil:
			got = fmt.Sprint(err)
		case isBlocked(m) && req.Info.Blocked != "":
			got = "blocked"
		case m.Authoritative && req.Info.Local:
			got = "local"
		case resp.Wire != nil && req.Info.Cached:
			got = "next"
		}
		if got != tc.answers {
			t.Errorf("%s from %s (CNAME %q): %s, want %s (info %+v)", tc.name, tc.client, tc.cname, got, tc.answers, req.Info)
		}

		// Behind a next that would wait, the same request.
		logged, before := len(rec.Find("allowed")), f.Stats()
		w := &waiting{}
		req = inlineRequest(t, tc.name, tc.client)
		_, err = f.Middleware()(w).Resolve(context.Background(), req)
		if tc.answers != "next" && tc.cname == "" {
			continue // answered at once, as above
		}
		if err != resolver.ErrWouldWait || w.calls != 1 || req.Info != (resolver.Info{}) || !reflect.DeepEqual(f.Stats(), before) ||
			len(rec.Find("allowed")) != logged {
			t.Errorf("%s from %s: %v, %d calls, info %+v, stats %+v then %+v: passed on nothing but the wait",
				tc.name, tc.client, err, w.calls, req.Info, before, f.Stats())
		}
	}
}

// inlineRequest is a plain query for name's A records from client, as
// the listener reads it in the goroutine that received it.
func inlineRequest(t *testing.T, name string, client netip.Addr) *resolver.Request {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, dns.TypeA)
	q.SetEdns0(1232, false) // the EDE that marks a block goes to EDNS clients
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	req := resolver.NewRequest(q)
	req.Wire, req.QuestionEnd, req.Limit, req.Client, req.Inline = raw, len(raw)-11, 1232, client, true
	return req
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
// lists block is blocked on every hit, each counted once: one cache hit
// and one cloaking block per query, whether the hit is Inline or not.
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
		req := resolver.NewRequest(q)
		req.Client = adult
		resp, err := chain.Resolve(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		m, err := resp.Unpack()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := ask(); !isBlocked(m) { // fills the cache
		t.Fatalf("not blocked: %v", m)
	}
	resp, err := chain.Resolve(context.Background(), inlineRequest(t, "cdn.example.org.", adult))
	if m, _ := resp.Unpack(); err != nil || m == nil || !isBlocked(m) {
		t.Fatalf("an Inline hit on a blocked CNAME chain: %v, %v", resp, err)
	}
	if m := ask(); !isBlocked(m) {
		t.Fatalf("not blocked: %v", m)
	}
	if st, fs := c.Stats(), f.Stats(); st.Hits != 2 || st.Misses != 1 || fs.Cloaked != 3 {
		t.Errorf("cache %+v, filter %+v: want 2 hits, 1 miss, 3 cloaking blocks", st, fs)
	}
}
