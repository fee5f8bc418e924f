package proxy

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/upstream"
)

// TestPort853Blocked is issue 13's scenario: the DoT upstream's
// handshake never completes, a DNS-over-HTTPS fallback (HTTP/2, then
// HTTP/3) is healthy. Every query of a burst is answered, none lost or
// SERVFAIL, and the fallback leads within the first few queries: the
// blocked upstream is moved on from (a failover it counts) only for
// those.
func TestPort853Blocked(t *testing.T) {
	const (
		queries   = 30
		firstFew  = 8
		dialLimit = 500 * time.Millisecond
	)
	for _, transport := range []upstream.Transport{upstream.HTTPS, upstream.HTTP3, upstream.QUIC} {
		t.Run(transport.String(), func(t *testing.T) {
			ca := dottest.NewCA(t)
			caFile, _, _ := ca.WriteFiles(t, t.TempDir(), nil)
			fallback := config.Upstream{Name: "fallback", Transport: transport,
				TLSName: "dns.test", CAFile: caFile, Fallback: true}
			var answered func() int64
			if transport == upstream.QUIC {
				doq := dottest.StartDoQ(t, dottest.DoQOptions{Cert: ca.Leaf(t, "dns.test")})
				fallback.Address, answered = doq.Addr(), doq.Queries
			} else {
				doh := dottest.StartDoH(t, dottest.DoHOptions{Cert: ca.Leaf(t, "dns.test"), HTTP3: transport == upstream.HTTP3})
				fallback.Address, fallback.Path, answered = doh.Addr(), dottest.DoHPath, doh.Queries
			}
			cfg := config.Default()
			cfg.Upstreams = []config.Upstream{
				{Name: "blocked", Address: dottest.StartTarpit(t, "127.0.0.1"), TLSName: "dns.test", CAFile: caFile},
				fallback,
			}
			cfg.Connections.DialTimeout = dialLimit
			cfg.Health.Timeout = dialLimit
			cfg.Health.Interval = 100 * time.Millisecond
			cfg.Health.DownInterval = 50 * time.Millisecond
			p, addr := startProxy(t, cfg)
			dot := p.gen.Load().ups[0]
			if dot.Name() != "blocked" {
				t.Fatalf("upstream 0 is %s, want blocked", dot.Name())
			}
			lastMovedOn := -1
			failovers := dot.Stats().Failovers
			for i := range queries {
				r, err := ask(t, "udp", addr, indexedName(i))
				if err != nil {
					t.Fatalf("query %d lost: %v", i, err)
				}
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Fatalf("query %d answered %s with %d records", i, dns.RcodeToString[r.Rcode], len(r.Answer))
				}
				if n := dot.Stats().Failovers; n != failovers {
					failovers, lastMovedOn = n, i
				}
			}
			t.Logf("the fallback leads from query %d of %d", lastMovedOn+1, queries)
			if lastMovedOn >= firstFew {
				t.Errorf("the blocked upstream still led query %d of %d; want the fallback leading within %d", lastMovedOn, queries, firstFew)
			}
			if got := answered(); got < queries {
				t.Errorf("the fallback answered %d queries of %d", got, queries)
			}
		})
	}
}

// indexedName is the name of query i of a test: distinct, so that the
// cache answers none.
func indexedName(i int) string {
	return "q" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + ".example"
}
