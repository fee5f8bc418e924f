package cache

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/testlog"
	"github.com/dotproxy/dotproxy/listener"
	"github.com/dotproxy/dotproxy/resolver"
)

// countingFast passes both paths through to r and counts the queries the
// fast path answered.
type countingFast struct {
	r    resolver.Resolver
	fast atomic.Int32
}

func (c *countingFast) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	return c.r.Resolve(ctx, q)
}

func (c *countingFast) ResolvePacked(dst []byte, q *resolver.Packed, info *resolver.Info) ([]byte, bool) {
	out, ok := c.r.(resolver.Fast).ResolvePacked(dst, q, info)
	if ok {
		c.fast.Add(1)
	}
	return out, ok
}

// serveWith starts a listener on loopback in front of r, logging to
// logger (nil: nowhere), and returns its UDP and TCP addresses.
func serveWith(t *testing.T, r resolver.Resolver, logger *slog.Logger) (udp, tcp netip.AddrPort) {
	t.Helper()
	s, err := listener.New(listener.Options{Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, Resolver: r, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s.UDPAddrs()[0], s.TCPAddrs()[0]
}

// upstreamAnswers are the answers TestPackedLikeResolve caches, each
// built for the question it gets.
var upstreamAnswers = map[string]func(q *dns.Msg) *dns.Msg{
	"A records": withA(300, 3),
	"CNAME chain, upper case": func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		m.RecursionAvailable = true
		name := q.Question[0].Name
		m.Answer = []dns.RR{
			&dns.CNAME{Hdr: dns.RR_Header{Name: strings.ToUpper(name), Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 120}, Target: "Edge.CDN.example.net."},
			&dns.A{Hdr: dns.RR_Header{Name: "edge.cdn.example.net.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(198, 51, 100, 7).To4()},
		}
		return m
	},
	"NXDOMAIN": negativeAnswer(dns.RcodeNameError, 900, 300),
	"NODATA":   negativeAnswer(dns.RcodeSuccess, 100, 3600),
	"AD AA and EDE": func(q *dns.Msg) *dns.Msg {
		m := withA(3600, 1)(q)
		m.AuthenticatedData, m.Authoritative = true, true
		m.SetEdns0(1232, true)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: "from upstream"},
			&dns.EDNS0_PADDING{Padding: make([]byte, 40)})
		return m
	},
	"MX with glue": func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		m.RecursionAvailable = true
		name := q.Question[0].Name
		for i, host := range []string{"mx1.", "mx2."} {
			m.Answer = append(m.Answer, &dns.MX{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 500},
				Preference: uint16(10 * (i + 1)), Mx: host + name})
			m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: host + name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 50},
				A: net.IPv4(192, 0, 2, byte(i+1)).To4()})
		}
		return m
	},
	"too big for 512": withA(300, 40),
}

// TestPackedLikeResolve: every hit answered from the packed form is the
// answer the usual path gives for the same query at the same time: one
// listener with Debug logs (which keeps every query on the usual path)
// and one without share the cache, and each query goes to both.
func TestPackedLikeResolve(t *testing.T) {
	clk := newClock()
	c := New(Options{Now: clk.Now})
	t.Cleanup(c.Close)
	counted := &countingFast{}
	for name, build := range upstreamAnswers {
		t.Run(name, func(t *testing.T) {
			up := answering(build)
			counted.r = c.Wrap(up)
			counted.fast.Store(0)
			slowUDP, slowTCP := serveWith(t, counted, slog.New(&testlog.Recorder{}))
			fastUDP, fastTCP := serveWith(t, counted, slog.New(slog.DiscardHandler))
			qname := "Packed-" + strings.ReplaceAll(strings.ToLower(name), " ", "-") + ".Example.COM."
			qtype := dns.TypeA
			if strings.HasPrefix(name, "MX") {
				qtype = dns.TypeMX
			}
			var fast int32
			for _, v := range queryVariants() {
				q := new(dns.Msg).SetQuestion(qname, qtype)
				q.Id = 0xbeef
				v.edit(q)
				clk.advance(3 * time.Second)   // ages differ from one variant to the next
				exchange(t, "udp", slowUDP, q) // fills the entry for this key
				for _, tr := range []struct {
					network    string
					slow, fast netip.AddrPort
				}{{"udp", slowUDP, fastUDP}, {"tcp", slowTCP, fastTCP}} {
					before := counted.fast.Load()
					want, _ := exchange(t, tr.network, tr.slow, q)
					if counted.fast.Load() != before {
						t.Fatalf("%s %s: the Debug listener used the fast path", v.name, tr.network)
					}
					got, _ := exchange(t, tr.network, tr.fast, q)
					if g, w := normalize(got), normalize(want); g != w {
						t.Errorf("%s over %s: fast path\n%s\nusual path\n%s", v.name, tr.network, g, w)
					}
				}
				fast = counted.fast.Load()
			}
			if fast == 0 {
				t.Error("no query took the fast path")
			}
			if name == "too big for 512" && fast == int32(2*len(queryVariants())) {
				t.Error("the fast path answered every query, even those that needed truncating")
			}
		})
	}
}

type variant struct {
	name string
	edit func(q *dns.Msg)
}

func queryVariants() []variant {
	return []variant{
		{"no EDNS", func(*dns.Msg) {}},
		{"EDNS", func(q *dns.Msg) { q.SetEdns0(1232, false) }},
		{"EDNS DO", func(q *dns.Msg) { q.SetEdns0(4096, true) }},
		{"EDNS 512", func(q *dns.Msg) { q.SetEdns0(512, false) }},
		{"CD", func(q *dns.Msg) { q.CheckingDisabled = true; q.SetEdns0(1232, false) }},
		{"AD", func(q *dns.Msg) { q.AuthenticatedData = true }},
		{"no RD", func(q *dns.Msg) { q.RecursionDesired = false }},
		{"lower case", func(q *dns.Msg) { q.Question[0].Name = strings.ToLower(q.Question[0].Name) }},
	}
}

// normalize prints m for comparison: names in one letter case (the fast
// path's compression may spell an owner name as the client's question
// does where the usual path spells it as stored).
func normalize(m *dns.Msg) string {
	return strings.ToLower(m.String())
}

// TestPackedDeclines: the fast path answers only fresh hits. A miss, a
// stale entry and a remembered failure go the usual way, as does every
// query while the cache logs at Debug; declining leaves the counters as
// they were.
func TestPackedDeclines(t *testing.T) {
	clk := newClock()
	up := answering(withA(60, 1))
	c, r := newCache(t, Options{Now: clk.Now, ServeStale: true}, up)
	fast := r.(resolver.Fast)
	packedQuery := func(name string) *resolver.Packed {
		q := query(name, dns.TypeA, true, false)
		raw, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		qlen := len(raw) - 11 // the OPT record ends it
		return &resolver.Packed{Wire: raw, QuestionEnd: qlen, Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET,
			RD: true, EDNS: true, Limit: 1232}
	}
	try := func(name string) bool {
		var info resolver.Info
		out, ok := fast.ResolvePacked(make([]byte, 3, 512), packedQuery(name), &info)
		if !ok && (len(out) != 3 || info != (resolver.Info{})) {
			t.Fatalf("declined, yet wrote %d bytes or info %+v", len(out)-3, info)
		}
		if ok {
			m := new(dns.Msg)
			if err := m.Unpack(out[3:]); err != nil || !info.Cached || len(m.Answer) != 1 || m.Answer[0].Header().Ttl == 0 {
				t.Fatalf("fast answer %v (%v), info %+v", m, err, info)
			}
		}
		return ok
	}
	if try("miss.example.") {
		t.Fatal("answered a miss")
	}
	if st := c.Stats(); st.Hits != 0 || st.Misses != 0 {
		t.Fatalf("a declined miss counted: %+v", st)
	}
	resolve(t, r, query("miss.example.", dns.TypeA, true, false))
	if !try("miss.example.") {
		t.Fatal("declined a fresh hit")
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 1 {
		t.Fatalf("stats %+v, want 1 hit and 1 miss", st)
	}
	clk.advance(61 * time.Second)
	if try("miss.example.") {
		t.Fatal("answered from an expired entry")
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 1 || st.Stale != 0 {
		t.Fatalf("a declined stale entry counted: %+v", st)
	}

	debug := New(Options{Now: clk.Now, Logger: slog.New(&testlog.Recorder{})})
	t.Cleanup(debug.Close)
	dr := debug.Wrap(up)
	resolve(t, dr, query("debug.example.", dns.TypeA, true, false))
	var info resolver.Info
	if _, ok := dr.(resolver.Fast).ResolvePacked(nil, packedQuery("debug.example."), &info); ok {
		t.Fatal("the fast path answered with Debug logs on")
	}
}
