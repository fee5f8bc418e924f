package metrics

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/listener"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// neverHedge is a hedge delay no test reaches: every failover in the
// stack test follows a failure, however slow a loaded machine is.
const neverHedge = time.Minute

// TestMetricsChangeAsQueriesFlow scrapes, sends queries over UDP and TCP
// through a listener, a cache and a selector over two DoT servers, the
// first of which answers SERVFAIL, scrapes again and checks what each
// query added.
func TestMetricsChangeAsQueriesFlow(t *testing.T) {
	ca := dottest.NewCA(t)
	servfail := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test"), Handler: dottest.Rcode(dns.RcodeServerFailure)})
	good := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test")})
	var ups []*upstream.Upstream
	var members []upstream.Member
	for i, srv := range []*dottest.Server{servfail, good} {
		name := []string{"first", "second"}[i]
		u, err := upstream.New(upstream.Options{Name: name, Addr: srv.Addr(), TLSName: "dns.test", RootCAs: ca.Pool})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(u.Close)
		ups, members = append(ups, u), append(members, u)
	}
	policy, _ := upstream.NewPolicy(upstream.PolicyOrdered)
	sel, err := upstream.NewSelector(upstream.SelectorOptions{Policy: policy, HedgeDelay: neverHedge, AttemptTimeout: neverHedge}, members...)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(cache.Options{})
	t.Cleanup(c.Close)

	m := New(Options{
		Upstreams: func() []upstream.UpstreamStats {
			var st []upstream.UpstreamStats
			for _, u := range ups {
				st = append(st, u.Stats())
			}
			return st
		},
		Cache: func() (cache.Stats, bool) { return c.Stats(), true },
	})
	srv := startListener(t, resolver.Chain(sel, c.Middleware()), m)

	before := scrapeHandler(t, m.Handler())
	ask := func(net string, addr netip.AddrPort, name string, qtype uint16) {
		t.Helper()
		q := new(dns.Msg).SetQuestion(name, qtype)
		cl := dns.Client{Net: net, Timeout: 10 * time.Second}
		r, _, err := cl.Exchange(q, addr.String())
		if err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s %s over %s: %v %v", name, dns.TypeToString[qtype], net, r, err)
		}
	}
	names := []string{"a.example.", "b.example.", "c.example."}
	for _, n := range names {
		ask("udp", srv.UDPAddrs()[0], n, dns.TypeA) // misses: first SERVFAIL, then second
	}
	for _, n := range names {
		ask("tcp", srv.TCPAddrs()[0], n, dns.TypeA) // hits
	}
	ask("tcp", srv.TCPAddrs()[0], "a.example.", dns.TypeAAAA) // a miss
	after := scrapeHandler(t, m.Handler())

	wantDeltas(t, before, after, map[string]float64{
		key("dotproxy_queries_total", "transport", "udp", "qtype", "A", "rcode", "NOERROR"):    3,
		key("dotproxy_queries_total", "transport", "tcp", "qtype", "A", "rcode", "NOERROR"):    3,
		key("dotproxy_queries_total", "transport", "tcp", "qtype", "AAAA", "rcode", "NOERROR"): 1,
		key("dotproxy_query_duration_seconds_count", "source", "upstream"):                     4,
		key("dotproxy_query_duration_seconds_count", "source", "cache"):                        3,
		key("dotproxy_query_duration_seconds_count", "source", "none"):                         0,
		key("dotproxy_upstream_queries_total", "upstream", "first"):                            4,
		key("dotproxy_upstream_answers_total", "upstream", "first"):                            4,
		key("dotproxy_upstream_errors_total", "upstream", "first", "kind", "servfail"):         4,
		key("dotproxy_upstream_failovers_total", "upstream", "first"):                          4,
		key("dotproxy_upstream_queries_total", "upstream", "second"):                           4,
		key("dotproxy_upstream_answers_total", "upstream", "second"):                           4,
		key("dotproxy_upstream_errors_total", "upstream", "second", "kind", "servfail"):        0,
		key("dotproxy_upstream_failovers_total", "upstream", "second"):                         0,
		key("dotproxy_upstream_rtt_seconds_count", "upstream", "second"):                       4,
		"dotproxy_cache_hits_total":   3,
		"dotproxy_cache_misses_total": 4,
	})
	// Latencies and the smoothed RTT are measured, whatever they are.
	for _, k := range []string{
		key("dotproxy_query_duration_seconds_sum", "source", "upstream"),
		key("dotproxy_upstream_rtt_seconds_sum", "upstream", "second"),
	} {
		if after.samples[k] <= before.samples[k] {
			t.Errorf("%s did not grow: %v → %v", k, before.samples[k], after.samples[k])
		}
	}
	if after.samples[key("dotproxy_upstream_srtt_seconds", "upstream", "second")] <= 0 {
		t.Error("no smoothed RTT for the upstream that answered")
	}
	if after.samples[key("dotproxy_upstream_open_connections", "upstream", "second")] < 1 {
		t.Error("no open connection to the upstream that answered")
	}
}

// startListener serves r on loopback, observed by obs, until the test
// ends.
func startListener(t *testing.T, r resolver.Resolver, obs listener.Observer) *listener.Server {
	t.Helper()
	srv, err := listener.New(listener.Options{
		Addrs:    []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		Resolver: r,
		Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}
