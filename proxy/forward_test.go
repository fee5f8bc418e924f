package proxy

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/rebind"
	"github.com/dotproxy/dotproxy/resolver"
)

func askType(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(1232, false)
	r, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// TestForwarding: with router: set to an in-process plain DNS server, the
// house's names go to it and only to it, the rest to the public upstream,
// whose answers pointing into the house are refused; a forward rule with
// tls_name reaches its server over verified DNS over TLS.
func TestForwarding(t *testing.T) {
	var routerAsked atomic.Int64
	routerSrv := dottest.StartPlain(t, func(q *dns.Msg, reply func(*dns.Msg)) {
		routerAsked.Add(1)
		qs := q.Question[0]
		switch {
		case qs.Qtype == dns.TypePTR:
			m := new(dns.Msg).SetReply(q)
			m.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: qs.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: "nas.lan."}}
			reply(m)
		case strings.EqualFold(qs.Name, "gone.lan."):
			reply(new(dns.Msg).SetRcode(q, dns.RcodeNameError))
		default:
			reply(dottest.AnswerMsg(q, netip.MustParseAddr("192.168.1.10")))
		}
	}, false)
	var corp *dottest.Server
	tb := newTestbed(t, 1, func(c *config.Config) {
		c.Router = routerSrv.Addr()
		c.Rebind.Allow = []string{"plex.direct"}
	})
	// A second proxy for the DoT rule needs the testbed's CA: reload
	// into it.
	corp = dottest.Start(t, dottest.Options{Cert: tb.ca.Leaf(t, "dns.corp.test"), Handler: dottest.Answer("10.8.0.7")})
	cfg := *tb.cfg
	cfg.Forward = []config.Forward{{Domains: []string{"corp.example"}, Servers: []netip.AddrPort{corp.Addr()},
		TLSName: "dns.corp.test", CAFile: tb.caFile}}
	if err := tb.proxy.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	var publicAsked atomic.Int64
	tb.ups[0].SetHandler(func(q *dns.Msg, reply func(*dns.Msg)) {
		name := q.Question[0].Name
		if name == "." {
			dottest.Answer("192.0.2.1")(q, reply) // health probe
			return
		}
		publicAsked.Add(1)
		switch {
		case strings.HasPrefix(name, "evil."), strings.HasSuffix(name, "plex.direct."):
			reply(dottest.AnswerMsg(q, netip.MustParseAddr("192.168.1.1")))
		default:
			dottest.Answer("192.0.2.1")(q, reply)
		}
	})

	for _, tc := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer string // the first answer record's data
		router bool   // the router is asked
		public bool   // the public upstream is asked
		ede    uint16
	}{
		{"nas.lan", dns.TypeA, dns.RcodeSuccess, "192.168.1.10", true, false, 0},
		{"NAS.Lan", dns.TypeAAAA, dns.RcodeSuccess, "192.168.1.10", true, false, 0},
		{"gone.lan", dns.TypeA, dns.RcodeNameError, "", true, false, 0},
		{"nas", dns.TypeA, dns.RcodeSuccess, "192.168.1.10", true, false, 0}, // single label
		{"nas.home.arpa", dns.TypeA, dns.RcodeSuccess, "192.168.1.10", true, false, 0},
		{"10.1.168.192.in-addr.arpa", dns.TypePTR, dns.RcodeSuccess, "nas.lan.", true, false, 0},
		{"printer.local", dns.TypeA, dns.RcodeNameError, "", false, false, 0}, // mDNS: answered here
		{"www.corp.example", dns.TypeA, dns.RcodeSuccess, "10.8.0.7", false, false, 0},
		{"www.example", dns.TypeA, dns.RcodeSuccess, "192.0.2.1", false, true, 0},
		{"evil.example", dns.TypeA, dns.RcodeRefused, "", false, true, dns.ExtendedErrorCodeBlocked},
		{"a.b.plex.direct", dns.TypeA, dns.RcodeSuccess, "192.168.1.1", false, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r0, p0 := routerAsked.Load(), publicAsked.Load()
			r := askType(t, tb.udp, tc.name, tc.qtype)
			if r.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			var got string
			if len(r.Answer) > 0 {
				f := strings.Fields(r.Answer[0].String())
				got = f[len(f)-1]
			}
			if tc.answer != "" && got != tc.answer && !(tc.qtype == dns.TypeAAAA && got == "") {
				t.Errorf("answer %q, want %q", got, tc.answer)
			}
			if asked := routerAsked.Load() > r0; asked != tc.router {
				t.Errorf("router asked: %v, want %v", asked, tc.router)
			}
			if asked := publicAsked.Load() > p0; asked != tc.public {
				t.Errorf("public upstream asked: %v, want %v", asked, tc.public)
			}
			if tc.ede != 0 {
				if e := resolver.EDE(r); e == nil || e.InfoCode != tc.ede || e.ExtraText != rebind.Text {
					t.Errorf("EDE %v, want %d", e, tc.ede)
				}
			}
		})
	}

	// The status page shows the rules beside the upstreams: the corp
	// rule, then router:'s, with their servers' counters.
	fw := tb.proxy.status().Forward
	if len(fw) != 2 || fw[0].Domains[0] != "corp.example" || fw[1].Domains[0] != "lan" {
		t.Fatalf("status forward = %+v", fw)
	}
	if s := fw[0].Servers[0]; s.TLSName != "dns.corp.test" || s.Queries == 0 || !s.Healthy {
		t.Errorf("corp server status %+v", s)
	}
	if s := fw[1].Servers[0]; s.Name != "router" || s.Address != routerSrv.Addr().String() || s.Queries == 0 || !s.Healthy {
		t.Errorf("router status %+v", s)
	}
}

// TestForwardingNoLeak: when the router is down, a LAN name fails with
// SERVFAIL and an Extended DNS Error; the public upstream never hears it.
func TestForwardingNoLeak(t *testing.T) {
	dead := dottest.StartPlain(t, dottest.Silent(), false)
	var publicAsked atomic.Int64
	tb := newTestbed(t, 1, func(c *config.Config) {
		c.Router = dead.Addr()
		c.Timeout = 200 * time.Millisecond
		c.QueryTimeout = time.Second
	})
	tb.ups[0].SetHandler(func(q *dns.Msg, reply func(*dns.Msg)) {
		if q.Question[0].Name != "." {
			publicAsked.Add(1)
		}
		dottest.Answer("192.0.2.1")(q, reply)
	})
	for _, name := range []string{"nas.lan", "nas", "5.1.168.192.in-addr.arpa"} {
		r := askType(t, tb.udp, name, dns.TypeA)
		if r.Rcode != dns.RcodeServerFailure || resolver.EDE(r) == nil {
			t.Errorf("%s: rcode %s, EDE %v; want SERVFAIL with an EDE", name, dns.RcodeToString[r.Rcode], resolver.EDE(r))
		}
	}
	if n := publicAsked.Load(); n != 0 {
		t.Errorf("the public upstream was asked %d LAN names", n)
	}
}

// TestForwardingReload: a reload that leaves the rules alone keeps them,
// servers and counters included; one that changes them builds them anew
// and the filter with them, whose locally served zones follow: without
// router:, 168.192.in-addr.arpa is answered here again.
func TestForwardingReload(t *testing.T) {
	routerSrv := dottest.StartPlain(t, dottest.Answer("192.168.1.10"), false)
	tb := newTestbed(t, 1, func(c *config.Config) { c.Router = routerSrv.Addr() })
	old := tb.proxy.gen.Load()

	same := *tb.cfg
	same.Cache.Size++ // a change elsewhere
	if err := tb.proxy.Reload(&same); err != nil {
		t.Fatal(err)
	}
	if g := tb.proxy.gen.Load(); g.fwd != old.fwd || g.filter != old.filter {
		t.Error("an unchanged router: was built anew")
	}

	none := same
	none.Router = netip.AddrPort{}
	if err := tb.proxy.Reload(&none); err != nil {
		t.Fatal(err)
	}
	if g := tb.proxy.gen.Load(); g.fwd == old.fwd || g.filter == old.filter || len(g.fwd.rules) != 0 {
		t.Error("removing router: kept the old rules or filter")
	}
	udp0, _ := routerSrv.Queries()
	r := askType(t, tb.udp, "7.1.168.192.in-addr.arpa", dns.TypePTR)
	if udp, _ := routerSrv.Queries(); r.Rcode != dns.RcodeNameError || !r.Authoritative || udp != udp0 {
		t.Errorf("after removing router: rcode %s, AA %v, router asked %d times; want a local NXDOMAIN",
			dns.RcodeToString[r.Rcode], r.Authoritative, udp-udp0)
	}
}
