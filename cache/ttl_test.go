package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestTTLCountdown: a hit sends no query, and every record goes out with
// its remaining TTL, never 0 while the entry is fresh; at expiry the
// next query goes upstream.
func TestTTLCountdown(t *testing.T) {
	// Two records of different TTLs: each counts down on its own.
	up := answering(func(q *dns.Msg) *dns.Msg {
		m := withA(300, 1)(q)
		m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: "ns.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 600}, A: []byte{192, 0, 2, 53}})
		return m
	})
	clk := newClock()
	_, r := newCache(t, Options{Now: clk.Now}, up)
	first := resolve(t, r, query("example.com.", dns.TypeA, false, false))
	if got := fmt.Sprint(ttlsOf(first)); got != "[300 600]" {
		t.Fatalf("first answer TTLs %s, want [300 600]", got)
	}
	for _, tc := range []struct {
		after   time.Duration // since the answer was stored
		want    string
		queries int64 // upstream queries so far
	}{
		{0, "[300 600]", 1},
		{999 * time.Millisecond, "[300 600]", 1},
		{time.Second, "[299 599]", 1},
		{100 * time.Second, "[200 500]", 1},
		{299*time.Second + 999*time.Millisecond, "[1 301]", 1},
		{300 * time.Second, "[300 600]", 2}, // expired: asked again, stored afresh
	} {
		t.Run(tc.after.String(), func(t *testing.T) {
			saved := clk.Now()
			clk.advance(tc.after)
			defer clk.set(saved)
			m := resolve(t, r, query("example.com.", dns.TypeA, false, false))
			if got := fmt.Sprint(ttlsOf(m)); got != tc.want {
				t.Errorf("TTLs %s, want %s", got, tc.want)
			}
			if up.count() != tc.queries {
				t.Errorf("%d upstream queries, want %d", up.count(), tc.queries)
			}
		})
	}
}

// TestTTLClamps: min_ttl and max_ttl bound every record's TTL, and with
// it how long the entry lives; a TTL of 0 is not cached unless min_ttl
// raises it.
func TestTTLClamps(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ttl        uint32
		min, max   time.Duration
		wantTTL    uint32        // of the first hit
		expiresAt  time.Duration // the entry is fresh until then
		wantCached bool
	}{
		{name: "unclamped", ttl: 300, wantTTL: 300, expiresAt: 300 * time.Second, wantCached: true},
		{name: "raised", ttl: 5, min: time.Minute, wantTTL: 60, expiresAt: time.Minute, wantCached: true},
		{name: "lowered", ttl: 86400 * 7, max: time.Hour, wantTTL: 3600, expiresAt: time.Hour, wantCached: true},
		{name: "default max 1 day", ttl: 86400 * 7, wantTTL: 86400, expiresAt: 24 * time.Hour, wantCached: true},
		{name: "ttl 0 not cached", ttl: 0},
		{name: "ttl 0 raised", ttl: 0, min: 10 * time.Second, wantTTL: 10, expiresAt: 10 * time.Second, wantCached: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := answering(withA(tc.ttl, 1))
			clk := newClock()
			_, r := newCache(t, Options{Now: clk.Now, MinTTL: tc.min, MaxTTL: tc.max}, up)
			q := query("example.com.", dns.TypeA, false, false)
			resolve(t, r, q)
			m := resolve(t, r, q)
			if !tc.wantCached {
				if up.count() != 2 {
					t.Fatalf("%d upstream queries, want 2: the answer was cached", up.count())
				}
				return
			}
			if up.count() != 1 || m.Answer[0].Header().Ttl != tc.wantTTL {
				t.Fatalf("hit TTL %d after %d queries, want %d after 1", m.Answer[0].Header().Ttl, up.count(), tc.wantTTL)
			}
			clk.advance(tc.expiresAt - time.Second)
			if m := resolve(t, r, q); up.count() != 1 || m.Answer[0].Header().Ttl != 1 {
				t.Fatalf("last second: TTL %d after %d queries, want 1 after 1", m.Answer[0].Header().Ttl, up.count())
			}
			clk.advance(time.Second)
			if resolve(t, r, q); up.count() != 2 {
				t.Fatalf("expired entry answered from cache")
			}
		})
	}
}

// TestNegativeTTL: NXDOMAIN and NODATA are cached for the lesser of the
// SOA's TTL and its MINIMUM (RFC 2308 §5), capped by NegativeTTL, and the
// SOA goes out with that TTL; without an SOA they are not cached.
func TestNegativeTTL(t *testing.T) {
	cnameNoData := func(q *dns.Msg) *dns.Msg {
		m := negativeAnswer(dns.RcodeSuccess, 900, 120)(q)
		m.Answer = []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 3600}, Target: "target.example.com."}}
		return m
	}
	referral := func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600}, Ns: "ns.example.com."}}
		return m
	}
	for _, tc := range []struct {
		name     string
		build    func(*dns.Msg) *dns.Msg
		capTTL   time.Duration
		wantTTL  uint32 // 0: not cached
		wantCode int
	}{
		{"NXDOMAIN, MINIMUM lower", negativeAnswer(dns.RcodeNameError, 3600, 300), 0, 300, dns.RcodeNameError},
		{"NXDOMAIN, SOA TTL lower", negativeAnswer(dns.RcodeNameError, 60, 300), 0, 60, dns.RcodeNameError},
		{"NODATA", negativeAnswer(dns.RcodeSuccess, 600, 900), 0, 600, dns.RcodeSuccess},
		{"NXDOMAIN, capped", negativeAnswer(dns.RcodeNameError, 86400, 86400), 0, 3600, dns.RcodeNameError},
		{"NXDOMAIN, own cap", negativeAnswer(dns.RcodeNameError, 3600, 3600), 10 * time.Minute, 600, dns.RcodeNameError},
		{"CNAME to NODATA", cnameNoData, 0, 120, dns.RcodeSuccess},
		{"NXDOMAIN without SOA", negativeAnswer(dns.RcodeNameError, 0, 0), 0, 0, dns.RcodeNameError},
		{"NODATA without SOA", negativeAnswer(dns.RcodeSuccess, 0, 0), 0, 0, dns.RcodeSuccess},
		{"referral", referral, 0, 0, dns.RcodeSuccess},
		{"negative caching off", negativeAnswer(dns.RcodeNameError, 3600, 300), -1, 0, dns.RcodeNameError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := answering(tc.build)
			clk := newClock()
			_, r := newCache(t, Options{Now: clk.Now, NegativeTTL: tc.capTTL}, up)
			q := query("nx.example.com.", dns.TypeA, false, false)
			resolve(t, r, q)
			m := resolve(t, r, q)
			if m.Rcode != tc.wantCode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.wantCode])
			}
			if tc.wantTTL == 0 {
				if up.count() != 2 {
					t.Fatalf("%d upstream queries, want 2: it was cached", up.count())
				}
				return
			}
			if up.count() != 1 {
				t.Fatalf("%d upstream queries, want 1", up.count())
			}
			if s := soaOf(m.Ns); s == nil || s.Hdr.Ttl != tc.wantTTL {
				t.Fatalf("SOA %v, want TTL %d", s, tc.wantTTL)
			}
			clk.advance(time.Duration(tc.wantTTL-1) * time.Second)
			if resolve(t, r, q); up.count() != 1 {
				t.Fatal("asked again before the negative TTL ran out")
			}
			clk.advance(time.Second)
			if resolve(t, r, q); up.count() != 2 {
				t.Fatal("not asked again once the negative TTL ran out")
			}
		})
	}
}
