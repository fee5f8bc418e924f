package filter

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestLocalRecords(t *testing.T) {
	f, _ := newFilter(t, Options{LocalRecords: map[string][]netip.Addr{
		"nas.home.arpa":   {netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("fd00::10")},
		"NAS2.Home.Arpa.": {netip.MustParseAddr("192.168.1.10")},
		"printer.lan":     {netip.MustParseAddr("::ffff:10.0.0.9")},
		"v6only.lan":      {netip.MustParseAddr("fd00::20")},
	}})
	up := &upstream{}
	for _, tc := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string // the answer records' data, in order
		soa    string   // the zone of the SOA in the authority section, if any
	}{
		{"nas.home.arpa", dns.TypeA, dns.RcodeSuccess, []string{"192.168.1.10"}, ""},
		{"NAS.home.ARPA", dns.TypeAAAA, dns.RcodeSuccess, []string{"fd00::10"}, ""},
		{"nas.home.arpa", dns.TypeANY, dns.RcodeSuccess, []string{"192.168.1.10", "fd00::10"}, ""},
		{"nas.home.arpa", dns.TypeMX, dns.RcodeSuccess, nil, "home.arpa."},
		{"nas.home.arpa", dns.TypeTXT, dns.RcodeSuccess, nil, "home.arpa."},
		{"nas2.home.arpa", dns.TypeA, dns.RcodeSuccess, []string{"192.168.1.10"}, ""},
		{"printer.lan", dns.TypeA, dns.RcodeSuccess, []string{"10.0.0.9"}, ""},
		{"printer.lan", dns.TypeAAAA, dns.RcodeSuccess, nil, "printer.lan."},
		{"v6only.lan", dns.TypeA, dns.RcodeSuccess, nil, "v6only.lan."},
		{"10.1.168.192.in-addr.arpa", dns.TypePTR, dns.RcodeSuccess, []string{"nas.home.arpa.", "nas2.home.arpa."}, ""},
		{"10.1.168.192.in-addr.arpa", dns.TypeA, dns.RcodeSuccess, nil, "168.192.in-addr.arpa."},
		{"9.0.0.10.in-addr.arpa", dns.TypePTR, dns.RcodeSuccess, []string{"printer.lan."}, ""},
		{"0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa", dns.TypePTR, dns.RcodeSuccess, []string{"nas.home.arpa."}, ""},
		// the rest of the locally served zones: never upstream
		{"other.home.arpa", dns.TypeA, dns.RcodeNameError, nil, "home.arpa."},
		{"x.nas.home.arpa", dns.TypeA, dns.RcodeNameError, nil, "home.arpa."},
		{"home.arpa", dns.TypeSOA, dns.RcodeSuccess, []string{"home.arpa."}, ""},
		{"home.arpa", dns.TypeA, dns.RcodeSuccess, nil, "home.arpa."},
		{"1.168.192.in-addr.arpa", dns.TypePTR, dns.RcodeSuccess, nil, "168.192.in-addr.arpa."}, // above a PTR: NODATA
		{"11.1.168.192.in-addr.arpa", dns.TypePTR, dns.RcodeNameError, nil, "168.192.in-addr.arpa."},
		{"printer.local", dns.TypeA, dns.RcodeNameError, nil, "local."},
		{"1.0.0.10.in-addr.arpa", dns.TypePTR, dns.RcodeNameError, nil, "10.in-addr.arpa."},
		{"1.0.16.172.in-addr.arpa", dns.TypePTR, dns.RcodeNameError, nil, "16.172.in-addr.arpa."},
		{"1.0.31.172.in-addr.arpa", dns.TypePTR, dns.RcodeNameError, nil, "31.172.in-addr.arpa."},
		{"1.0.254.169.in-addr.arpa", dns.TypePTR, dns.RcodeNameError, nil, "254.169.in-addr.arpa."},
		{"1.0.64.100.in-addr.arpa", dns.TypePTR, dns.RcodeNameError, nil, "64.100.in-addr.arpa."},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa", dns.TypePTR, dns.RcodeNameError, nil, "8.e.f.ip6.arpa."},
		{"1.0.0.127.in-addr.arpa", dns.TypePTR, dns.RcodeSuccess, []string{"localhost."}, ""},
		{"localhost", dns.TypeA, dns.RcodeSuccess, []string{"127.0.0.1"}, ""},
		{"app.localhost", dns.TypeAAAA, dns.RcodeSuccess, []string{"::1"}, ""},
		{"localhost", dns.TypeMX, dns.RcodeSuccess, nil, "localhost."},
		{"x.invalid", dns.TypeA, dns.RcodeNameError, nil, "invalid."},
		{"duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion", dns.TypeA, dns.RcodeNameError, nil, "onion."},
	} {
		t.Run(tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			m := ask(t, f, up, netip.Addr{}, tc.name, tc.qtype)
			if m.Rcode != tc.rcode || !m.Authoritative {
				t.Fatalf("rcode %s, AA %v; want %s, authoritative", dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[tc.rcode])
			}
			var got []string
			for _, rr := range m.Answer {
				if rr.Header().Name != dns.Fqdn(tc.name) || rr.Header().Ttl != localTTL {
					t.Errorf("record %v: want owner %s, TTL %d", rr, dns.Fqdn(tc.name), localTTL)
				}
				f := strings.Fields(rr.String())
				got = append(got, f[len(f)-1])
				if s, ok := rr.(*dns.SOA); ok {
					got[len(got)-1] = s.Hdr.Name
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.answer, " ") {
				t.Errorf("answer %v, want %v", got, tc.answer)
			}
			var soa string
			if len(m.Ns) == 1 {
				soa = m.Ns[0].(*dns.SOA).Hdr.Name
			}
			if soa != tc.soa {
				t.Errorf("authority SOA %q, want %q", soa, tc.soa)
			}
		})
	}
	if n := up.queries.Load(); n != 0 {
		t.Fatalf("%d local queries went upstream", n)
	}
	if got := f.Stats().Local; got == 0 {
		t.Error("Stats.Local is 0")
	}

	// Names beside the local zones still go upstream.
	for _, name := range []string{"printer.lan.example", "lan", "1.0.32.172.in-addr.arpa", "1.0.128.100.in-addr.arpa", "8.8.8.8.in-addr.arpa", "arpa", "home.arpa.example.com", "example.local.com"} {
		before := up.queries.Load()
		if m := ask(t, f, up, netip.Addr{}, name, dns.TypeA); m.Authoritative || up.queries.Load() != before+1 {
			t.Errorf("%s: answered locally, want it sent upstream", name)
		}
	}
}

func TestLocalRecordsInvalid(t *testing.T) {
	for name, recs := range map[string]map[string][]netip.Addr{
		"bad name":     {"nas..home.arpa": {netip.MustParseAddr("192.168.1.10")}},
		"no addresses": {"nas.home.arpa": {}},
		"zone":         {"nas.home.arpa": {netip.MustParseAddr("fe80::1%eth0")}},
		"invalid addr": {"nas.home.arpa": {{}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(Options{LocalRecords: recs}); err == nil || !strings.Contains(err.Error(), "nas") {
				t.Fatalf("New: %v, want an error naming the record", err)
			}
		})
	}
}
