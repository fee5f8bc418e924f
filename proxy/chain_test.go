package proxy

import (
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
)

// TestChain: a query meets the filter, then the cache, then an upstream;
// the built proxy composes them in that order.
func TestChain(t *testing.T) {
	list := filepath.Join(t.TempDir(), "ads.txt")
	if err := os.WriteFile(list, []byte("0.0.0.0 ads.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tb := newTestbed(t, 1, func(c *config.Config) {
		c.Filter.Blocklists = []string{list}
		c.Filter.CacheDir = t.TempDir()
		c.LocalRecords = map[string][]netip.Addr{"nas.home.arpa": {netip.MustParseAddr("192.168.1.10")}}
	})
	var asked atomic.Int64 // upstream queries other than health probes
	tb.ups[0].SetHandler(func(q *dns.Msg, reply func(*dns.Msg)) {
		if q.Question[0].Name != "." {
			asked.Add(1)
		}
		dottest.Answer("192.0.2.1")(q, reply)
	})
	var before int64

	for _, tc := range []struct {
		name     string
		rcode    int
		upstream int64 // queries the upstream gets
		ede      uint16
	}{
		{"www.example.", dns.RcodeSuccess, 1, 0},
		{"www.example.", dns.RcodeSuccess, 0, 0}, // cached
		{"ads.example.", dns.RcodeNameError, 0, dns.ExtendedErrorCodeBlocked},
		{"tracker.ads.example.", dns.RcodeNameError, 0, dns.ExtendedErrorCodeBlocked},
		{"nas.home.arpa.", dns.RcodeSuccess, 0, 0},
		{"unknown.home.arpa.", dns.RcodeNameError, 0, 0},
	} {
		r, err := ask(t, "udp", tb.udp, tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := asked.Load() - before
		before = asked.Load()
		if r.Rcode != tc.rcode || got != tc.upstream {
			t.Errorf("%s: rcode %s, %d upstream queries; want %s, %d", tc.name,
				dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tc.rcode], tc.upstream)
		}
		if e := resolver.EDE(r); tc.ede != 0 && (e == nil || e.InfoCode != tc.ede) {
			t.Errorf("%s: EDE %v, want %d", tc.name, e, tc.ede)
		}
	}
}
