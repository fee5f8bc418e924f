package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/filter"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/upstream"
)

// startProxy builds and starts a proxy for cfg, listening on loopback,
// and returns its UDP address.
func startProxy(t *testing.T, cfg *config.Config) (*Proxy, string) {
	t.Helper()
	cfg.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
	cfg.Admin = netip.AddrPort{}
	cfg.Filter.CacheDir = t.TempDir()
	p := runProxy(t, cfg)
	return p, p.UDPAddrs()[0].String()
}

// lookups answers the A query for host with addr (no AAAA), counting
// them, and every other query with 192.0.2.1.
type lookups struct {
	host  string
	addr  netip.Addr // invalid: NXDOMAIN
	asked atomic.Int64
}

func (l *lookups) handle(q *dns.Msg, reply func(*dns.Msg)) {
	qn := q.Question[0]
	if qn.Name != dns.Fqdn(l.host) {
		reply(dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.1")))
		return
	}
	l.asked.Add(1)
	if qn.Qtype == dns.TypeA && l.addr.IsValid() {
		reply(dottest.AnswerMsg(q, l.addr))
		return
	}
	r := new(dns.Msg)
	r.SetReply(q)
	if !l.addr.IsValid() {
		r.Rcode = dns.RcodeNameError
	}
	reply(r)
}

// TestHostLookup: an upstream named by a host finds its address through
// the other upstreams (never itself), or dials its bootstrap list at
// once, and then answers.
func TestHostLookup(t *testing.T) {
	loopback := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name       string
		answer     netip.Addr // what the other upstream says of the host; invalid: NXDOMAIN
		bootstrap  []netip.Addr
		other      bool // an upstream with an IP address besides the named one
		wantLookup bool // the other upstream is asked the host's address
	}{
		{"through the other upstream", loopback, nil, true, true},
		{"bootstrap at once, before any lookup", netip.Addr{}, []netip.Addr{loopback}, true, false},
		{"bootstrap alone, not itself", netip.Addr{}, []netip.Addr{loopback}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			caFile, _, _ := ca.WriteFiles(t, t.TempDir(), nil)
			l := &lookups{host: "dns.test", addr: tc.answer}
			other := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test"), Handler: l.handle})
			named := &lookups{host: "dns.test"} // the named upstream itself: it must never be asked its own name
			namedSrv := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test"), Handler: func(q *dns.Msg, reply func(*dns.Msg)) {
				if q.Question[0].Name == "dns.test." {
					named.asked.Add(1)
				}
				reply(dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.2")))
			}})
			cfg := config.Default()
			cfg.Policy = "ordered"
			cfg.HedgeDelay = time.Second // no hedge to the other upstream while the named one looks up and dials
			cfg.Cache.Enabled = false
			cfg.Upstreams = []config.Upstream{{Name: "named", Host: "dns.test", Port: namedSrv.Addr().Port(),
				TLSName: "dns.test", CAFile: caFile, Bootstrap: tc.bootstrap}}
			if tc.other {
				cfg.Upstreams = append(cfg.Upstreams, config.Upstream{Name: "other", Address: other.Addr(),
					TLSName: "dns.test", CAFile: caFile})
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
			if got := l.asked.Load() > 0; got != tc.wantLookup {
				t.Errorf("the other upstream asked the host's address: %v, want %v", got, tc.wantLookup)
			}
			if n := named.asked.Load(); n != 0 {
				t.Errorf("the named upstream was asked its own address %d times", n)
			}
		})
	}
}

// TestHostLookupFailed: when no other upstream can be asked, an upstream
// that has no addresses yet takes its bootstrap list; one that has
// addresses gets the error, said once, and so keeps them.
func TestHostLookupFailed(t *testing.T) {
	bootstrap := []netip.Addr{netip.MustParseAddr("192.0.2.53")}
	for _, tc := range []struct {
		name      string
		addressed bool // the upstream has addresses already
		bootstrap []netip.Addr
		want      []netip.Addr // nil: an error
	}{
		{"no addresses yet: bootstrap", false, bootstrap, bootstrap},
		{"no addresses, no bootstrap: the error", false, nil, nil},
		{"addresses already: kept, not the bootstrap", true, bootstrap, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &hostLookup{bootstrap: tc.bootstrap, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			opts := upstream.Options{Name: "self", TLSName: "dns.test", Host: "dns.test", Port: 853, Lookup: l.lookup}
			if tc.addressed {
				opts.Addr = netip.MustParseAddrPort("192.0.2.1:853")
			}
			self, err := upstream.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(self.Close)
			l.self = self
			// The only upstream is the one looked up for: no other to ask.
			sel, err := upstream.NewSelector(upstream.SelectorOptions{}, self)
			if err != nil {
				t.Fatal(err)
			}
			f, err := filter.New(filter.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := config.Default()
			cfg.Upstreams = []config.Upstream{{Name: "self", Host: "dns.test", Port: 853, TLSName: "dns.test", Bootstrap: tc.bootstrap}}
			g := &generation{cfg: cfg, ups: []*upstream.Upstream{self}, selector: sel, fwd: &forwarding{}, filter: f}
			l.gen = func() *generation { return g }
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, ttl, err := l.lookup(ctx, "dns.test")
			switch {
			case tc.want == nil && err == nil:
				t.Fatalf("lookup gave %v, want an error", got)
			case tc.want == nil && err.Error() != errNoneToAsk.Error():
				t.Fatalf("lookup: %q, want %q once", err, errNoneToAsk)
			case tc.want != nil && (err != nil || !slices.Equal(got, tc.want) || ttl != bootstrapTTL):
				t.Fatalf("lookup: %v, %v, %v; want %v for %v", got, ttl, err, tc.want, bootstrapTTL)
			}
		})
	}
}
