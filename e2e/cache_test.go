package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/resolver"
	"github.com/miekg/dns"
)

// TestCacheAndServeStale: with the cache on, a repeated name is answered
// without another upstream query; when the upstream is frozen and the
// entry has expired, the client still gets the old answer, marked stale
// with Extended DNS Error 3 (RFC 8767).
func TestCacheAndServeStale(t *testing.T) {
	ub := startUnbound(t, newPKI(t), "127.0.0.2", `local-data: "short.example.com. 1 IN A 192.0.2.77"`)
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{ub.upstream("unbound")},
		cache:     true,
		extra:     "health: {interval: 200ms, down_interval: 200ms, timeout: 500ms, fall: 2, rise: 1}\n",
	})

	ask := func() *dns.Msg {
		t.Helper()
		q := new(dns.Msg).SetQuestion("short.example.com.", dns.TypeA)
		q.SetEdns0(1232, false)
		c := &dns.Client{Net: "udp", Timeout: clientTimeout}
		r, _, err := c.Exchange(q, d.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("answer: %v", r)
		}
		return r
	}
	sent := func() int {
		n := 0
		for _, e := range d.log() {
			if e.is("query sent", "qname", "short.example.com.") {
				n++
			}
		}
		return n
	}

	ask()
	d.waitLog(logWait, 0, "answer returned", "qname", "short.example.com.")
	ask()
	if n := sent(); n != 1 {
		t.Fatalf("%d upstream queries for two asks within the TTL, want 1 (the second from the cache)", n)
	}

	// The TTL of 1 s runs out while the upstream is frozen.
	ub.signal(syscall.SIGSTOP)
	t.Cleanup(func() { ub.signal(syscall.SIGCONT) })
	d.waitLog(healthWait, 0, "upstream down", "upstream", "unbound")
	// Until the entry expires it is answered fresh; ask until it has.
	var r *dns.Msg
	for i := 0; ; i++ {
		r = ask()
		if e := resolver.EDE(r); e != nil && e.InfoCode == dns.ExtendedErrorCodeStaleAnswer {
			break
		}
		if i == 20 {
			t.Fatalf("no stale answer (EDE 3) with the upstream frozen, last:\n%v", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ttl := r.Answer[0].Header().Ttl; ttl != 30 {
		t.Errorf("stale answer's TTL %d, want 30 (RFC 8767)", ttl)
	}
}
