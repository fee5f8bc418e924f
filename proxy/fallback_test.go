package proxy

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/upstream"
)

// startBlackhole starts a TCP listener on loopback that accepts
// connections and never says a word on them: a DoT address whose TLS
// handshake never completes, as where port 853 is filtered. Its
// connections are closed at cleanup.
func startBlackhole(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

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
				{Name: "blocked", Address: startBlackhole(t), TLSName: "dns.test", CAFile: caFile},
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
