package filter

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// TestForwardedZones: a locally served zone, or a part of one, that a
// forward rule names goes on to the next resolver (the router) instead
// of getting NXDOMAIN here; local records still answer, and the rest of
// the locally served zones stay local.
func TestForwardedZones(t *testing.T) {
	f, _ := newFilter(t, Options{
		LocalRecords: map[string][]netip.Addr{"nas.home.arpa": {netip.MustParseAddr("192.168.1.10")}},
		Forwarded:    []string{"Home.Arpa.", "1.168.192.in-addr.arpa", "lan"},
	})
	up := &upstream{}
	for _, tc := range []struct {
		name     string
		qtype    uint16
		upstream bool // sent on; else answered here
	}{
		{"printer.home.arpa", dns.TypeA, true},
		{"home.arpa", dns.TypeSOA, true},
		{"nas.home.arpa", dns.TypeA, false},               // a local record
		{"10.1.168.192.in-addr.arpa", dns.TypePTR, false}, // the local record's PTR
		{"11.1.168.192.in-addr.arpa", dns.TypePTR, true},
		{"1.168.192.in-addr.arpa", dns.TypePTR, true},
		{"1.2.168.192.in-addr.arpa", dns.TypePTR, false}, // 168.192's other parts stay local
		{"1.0.0.10.in-addr.arpa", dns.TypePTR, false},
		{"printer.local", dns.TypeA, false},
		{"nas.lan", dns.TypeA, true}, // not a local zone: on as before
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := up.queries.Load()
			m := ask(t, f, up, netip.Addr{}, tc.name, tc.qtype)
			if sent := up.queries.Load() > before; sent != tc.upstream {
				t.Errorf("sent on: %v, want %v (rcode %s)", sent, tc.upstream, dns.RcodeToString[m.Rcode])
			}
		})
	}
}
