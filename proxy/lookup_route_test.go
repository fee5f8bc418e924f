package proxy

import (
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/upstream"
)

// nameCounter counts the queries for one name, in any case, and answers
// them with addr (an A query; NODATA for AAAA); others get 192.0.2.1.
type nameCounter struct {
	name  string // FQDN
	addr  netip.Addr
	asked atomic.Int64
}

func (c *nameCounter) handle(q *dns.Msg, reply func(*dns.Msg)) {
	qs := q.Question[0]
	if !strings.EqualFold(qs.Name, c.name) {
		reply(dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.1")))
		return
	}
	c.asked.Add(1)
	if qs.Qtype == dns.TypeA {
		reply(dottest.AnswerMsg(q, c.addr))
		return
	}
	reply(new(dns.Msg).SetReply(q))
}

// TestHostLookupRoutes: a DNS-over-HTTPS upstream named by a host of the
// house is looked up the way a client's query for the name goes: at the
// forward rule's server or the router, or answered from a local record,
// and never at the public upstream (issue 12's rule); then it answers.
func TestHostLookupRoutes(t *testing.T) {
	loopback := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name      string
		host      string
		setup     func(c *config.Config, house netip.AddrPort)
		wantHouse bool // the house's server is asked the host's address; else a local record answers
	}{
		{"forward rule", "resolver.lan", func(c *config.Config, house netip.AddrPort) {
			c.Forward = []config.Forward{{Domains: []string{"lan"}, Servers: []netip.AddrPort{house}}}
		}, true},
		{"single label to router:", "pihole", func(c *config.Config, house netip.AddrPort) {
			c.Router = house
		}, true},
		{"home.arpa to router:", "dns.home.arpa", func(c *config.Config, house netip.AddrPort) {
			c.Router = house
		}, true},
		{"local record", "dns.home.arpa", func(c *config.Config, _ netip.AddrPort) {
			c.LocalRecords = map[string][]netip.Addr{"dns.home.arpa": {loopback}}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			caFile, _, _ := ca.WriteFiles(t, t.TempDir(), nil)
			house := &nameCounter{name: tc.host + ".", addr: loopback}
			houseSrv := dottest.StartPlain(t, house.handle, false)
			public := &nameCounter{name: tc.host + ".", addr: loopback}
			publicSrv := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test"), Handler: public.handle})
			named := dottest.StartDoH(t, dottest.DoHOptions{Cert: ca.Leaf(t, tc.host), Handler: dottest.Answer("192.0.2.2")})

			cfg := config.Default()
			cfg.Policy = "ordered"
			cfg.HedgeDelay = time.Second // no hedge to the public upstream while the named one looks up and dials
			cfg.Cache.Enabled = false
			cfg.Upstreams = []config.Upstream{
				{Name: "named", Transport: upstream.HTTPS, Host: tc.host, Port: named.Addr().Port(), Path: dottest.DoHPath,
					TLSName: tc.host, CAFile: caFile},
				{Name: "public", Address: publicSrv.Addr(), TLSName: "dns.test", CAFile: caFile},
			}
			tc.setup(cfg, houseSrv.Addr())
			if !config.LookupPath(cfg, 0) {
				t.Fatal("the configuration gives the named upstream no lookup path: the case tests nothing")
			}
			_, addr := startProxy(t, cfg)
			for i := range 3 {
				r, err := ask(t, "udp", addr, indexedName(i))
				if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Fatalf("query %d: %v, %v", i, r, err)
				}
				if a := r.Answer[0].(*dns.A).A.String(); a != "192.0.2.2" {
					t.Fatalf("query %d answered %s, want 192.0.2.2 from the named upstream", i, a)
				}
			}
			if n := public.asked.Load(); n != 0 {
				t.Errorf("the public upstream was asked %s's address %d times", tc.host, n)
			}
			if got := house.asked.Load() > 0; got != tc.wantHouse {
				t.Errorf("the house's server asked %s's address: %v, want %v", tc.host, got, tc.wantHouse)
			}
		})
	}
}

// TestHostLookupStartup: a host-named upstream without bootstrap whose
// only way to its address is another host-named upstream with a bootstrap
// list answers the very first query, after start-up and after a reload
// that rebuilds both (issue 13, F5): the bootstrapped one is asked at
// once, dialing its bootstrap addresses.
func TestHostLookupStartup(t *testing.T) {
	ca := dottest.NewCA(t)
	caFile, _, _ := ca.WriteFiles(t, t.TempDir(), nil)
	loopback := netip.MustParseAddr("127.0.0.1")
	b := &nameCounter{name: "a.test.", addr: loopback}
	bSrv := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "b.test"), Handler: b.handle})
	aSrv := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "a.test"), Handler: dottest.Answer("192.0.2.2")})
	upstreams := func(suffix string, bootstrap ...netip.Addr) []config.Upstream {
		return []config.Upstream{
			{Name: "a" + suffix, Host: "a.test", Port: aSrv.Addr().Port(), TLSName: "a.test", CAFile: caFile},
			{Name: "b" + suffix, Host: "b.test", Port: bSrv.Addr().Port(), TLSName: "b.test", CAFile: caFile, Bootstrap: bootstrap},
		}
	}
	cfg := config.Default()
	cfg.Policy = "ordered"
	cfg.HedgeDelay = time.Second // a's first query is not hedged to b while a looks up and dials
	cfg.Cache.Enabled = false
	cfg.Upstreams = upstreams("", loopback)
	p, addr := startProxy(t, cfg)
	first := func(stage string, i int) {
		t.Helper()
		r, err := ask(t, "udp", addr, indexedName(i))
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s: %v, %v", stage, r, err)
		}
		if a := r.Answer[0].(*dns.A).A.String(); a != "192.0.2.2" {
			t.Fatalf("%s: answered %s by b, want 192.0.2.2 by a", stage, a)
		}
	}
	first("the first query after start-up", 0)
	asked := b.asked.Load()
	if asked == 0 {
		t.Fatal("b was not asked a.test's address")
	}
	// New names and another bootstrap list: both upstreams are new.
	old := p.gen.Load().ups
	c := *cfg
	c.Upstreams = upstreams("2", loopback, netip.MustParseAddr("127.0.0.2"))
	if err := p.Reload(&c); err != nil {
		t.Fatal(err)
	}
	for _, u := range p.gen.Load().ups {
		if slices.Contains(old, u) {
			t.Fatalf("%s kept across the reload: the case tests nothing", u.Name())
		}
	}
	first("the first query after the reload", 1)
	if b.asked.Load() == asked {
		t.Error("the new b was not asked a.test's address")
	}
}
