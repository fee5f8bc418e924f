package cache

import (
	"context"
	"fmt"
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

// countingWire passes requests through to r and counts the answers that
// came in wire form.
type countingWire struct {
	r    resolver.Resolver
	wire atomic.Int32
}

func (c *countingWire) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	resp, err := c.r.Resolve(ctx, req)
	if resp.Wire != nil {
		c.wire.Add(1)
	}
	return resp, err
}

// rendering passes requests through to r as if their question could not
// be copied from the wire, so that every answer is a rendered message.
type rendering struct{ r resolver.Resolver }

func (c rendering) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	req.QuestionEnd = 0
	resp, err := c.r.Resolve(ctx, req)
	if resp.Wire != nil {
		panic("a wire answer without a question to copy")
	}
	return resp, err
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

// TestWireLikeRendered: every hit answered by copying the packed form is
// the answer a rendered message gives for the same query at the same
// time, once the listener has shaped and packed it: two listeners share
// the cache, one of them in front of a chain that cannot copy, and each
// query goes to both.
func TestWireLikeRendered(t *testing.T) {
	clk := newClock()
	c := New(Options{Now: clk.Now})
	t.Cleanup(c.Close)
	counted := &countingWire{}
	for name, build := range upstreamAnswers {
		t.Run(name, func(t *testing.T) {
			up := answering(build)
			counted.r = c.Wrap(up)
			counted.wire.Store(0)
			renderUDP, renderTCP := serveWith(t, rendering{counted}, slog.New(&testlog.Recorder{}))
			wireUDP, wireTCP := serveWith(t, counted, slog.New(slog.DiscardHandler))
			qname := "Packed-" + strings.ReplaceAll(strings.ToLower(name), " ", "-") + ".Example.COM."
			qtype := dns.TypeA
			if strings.HasPrefix(name, "MX") {
				qtype = dns.TypeMX
			}
			var wire int32
			for _, v := range queryVariants() {
				q := new(dns.Msg).SetQuestion(qname, qtype)
				q.Id = 0xbeef
				v.edit(q)
				clk.advance(3 * time.Second)     // ages differ from one variant to the next
				exchange(t, "udp", renderUDP, q) // fills the entry for this key
				for _, tr := range []struct {
					network      string
					render, wire netip.AddrPort
				}{{"udp", renderUDP, wireUDP}, {"tcp", renderTCP, wireTCP}} {
					want, _ := exchange(t, tr.network, tr.render, q)
					got, _ := exchange(t, tr.network, tr.wire, q)
					if g, w := normalize(got), normalize(want); g != w {
						t.Errorf("%s over %s: copied\n%s\nrendered\n%s", v.name, tr.network, g, w)
					}
				}
				wire = counted.wire.Load()
			}
			if wire == 0 {
				t.Error("no answer was copied from the packed form")
			}
			if name == "too big for 512" && wire == int32(2*len(queryVariants())) {
				t.Error("every answer was copied, even those that needed truncating")
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

// normalize prints m for comparison: names in one letter case (a copied
// answer's compression may spell an owner name as the client's question
// does where a rendered one spells it as stored).
func normalize(m *dns.Msg) string {
	return strings.ToLower(m.String())
}

// TestInlineDeclines: an Inline request is answered only from what the
// cache holds at once: a fresh hit, in wire form. A miss and a stale
// entry get resolver.ErrWouldWait and leave the counters as they were,
// so that the same request, resolved again not inline, counts once. The
// log level changes none of it.
func TestInlineDeclines(t *testing.T) {
	for _, debug := range []bool{false, true} {
		t.Run(fmt.Sprintf("debug=%v", debug), func(t *testing.T) {
			clk := newClock()
			up := answering(withA(60, 1))
			rec := &testlog.Recorder{}
			opts := Options{Now: clk.Now, ServeStale: true}
			if debug {
				opts.Logger = slog.New(rec)
			}
			c, r := newCache(t, opts, up)
			inline := func(name string) *resolver.Request {
				q := query(name, dns.TypeA, true, false)
				raw, err := q.Pack()
				if err != nil {
					t.Fatal(err)
				}
				req := resolver.NewRequest(q)
				req.Wire, req.QuestionEnd, req.Limit, req.Inline = raw, len(raw)-11, 1232, true // the OPT record ends it
				return req
			}
			try := func(name string) bool {
				req := inline(name)
				resp, err := r.Resolve(context.Background(), req)
				if err == resolver.ErrWouldWait {
					if req.Info != (resolver.Info{}) {
						t.Fatalf("declined, yet recorded %+v", req.Info)
					}
					return false
				}
				m := new(dns.Msg)
				if err != nil || resp.Wire == nil || m.Unpack(resp.Wire) != nil || !req.Info.Cached ||
					len(m.Answer) != 1 || m.Answer[0].Header().Ttl == 0 {
					t.Fatalf("inline answer %v %v (%v), info %+v", resp, m, err, req.Info)
				}
				return true
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
			if debug && len(rec.Find("cache hit")) == 0 {
				t.Error("the inline hit was not logged at Debug")
			}
		})
	}
}
