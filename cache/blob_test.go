package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// TestPackBlobAsMsgPacks: the packed answer a blob keeps is, octet for
// octet, what dns.Msg packs with compression for the same answer (ID 0),
// with the pooled packer's buffer too small, grown, and reused; and
// each TTL offset points at its record's TTL.
func TestPackBlobAsMsgPacks(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	many := func(n int, name string) []dns.RR {
		rrs := make([]dns.RR, n)
		for i := range rrs {
			rrs[i] = &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: uint32(100 + i)},
				AAAA: net.ParseIP(fmt.Sprintf("2001:db8::%x", i+1))}
		}
		return rrs
	}
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		aa    bool
		ad    bool
		rrs   rrForm
	}{
		{"A", dns.TypeA, dns.RcodeSuccess, false, false, rrForm{answer: []dns.RR{rr("www.example. 300 IN A 192.0.2.1")}}},
		{"CNAME chain", dns.TypeA, dns.RcodeSuccess, true, true, rrForm{answer: []dns.RR{
			rr("www.example. 300 IN CNAME edge.cdn.example.net."), rr("edge.cdn.example.net. 60 IN CNAME e1.cdn.example.net."),
			rr("e1.cdn.example.net. 20 IN A 192.0.2.7"), rr("e1.cdn.example.net. 20 IN A 192.0.2.8")}}},
		{"MX, NS and glue", dns.TypeMX, dns.RcodeSuccess, false, false, rrForm{
			answer: []dns.RR{rr("www.example. 300 IN MX 10 mail.www.example.")},
			ns:     []dns.RR{rr("example. 3600 IN NS ns.example.")},
			extra:  []dns.RR{rr("mail.www.example. 300 IN A 192.0.2.25"), rr("ns.example. 300 IN AAAA 2001:db8::53")}}},
		{"NXDOMAIN", dns.TypeA, dns.RcodeNameError, false, false, rrForm{
			ns: []dns.RR{rr("example. 300 IN SOA ns.example. host.example. 1 7200 900 1209600 300")}}},
		{"larger than the pool's buffer", dns.TypeAAAA, dns.RcodeSuccess, false, false, rrForm{answer: many(120, "www.example.")}},
		{"larger than the pool keeps", dns.TypeAAAA, dns.RcodeSuccess, false, false, rrForm{answer: many(700, "www.example.")}},
		{"after a large one", dns.TypeA, dns.RcodeSuccess, false, false, rrForm{answer: []dns.RR{rr("www.example. 300 IN A 192.0.2.1")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := key{name: "www.example.", qtype: tc.qtype, qclass: dns.ClassINET}
			a := answer{rcode: uint16(tc.rcode), aa: tc.aa, ra: true, ad: tc.ad, ttl: 20,
				counts: [3]uint16{uint16(len(tc.rrs.answer)), uint16(len(tc.rrs.ns)), uint16(len(tc.rrs.extra))}}
			blob := packBlob(&k, &a, &tc.rrs)
			if blob == nil {
				t.Fatal("not packed")
			}
			m := dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Rcode: tc.rcode, Authoritative: tc.aa,
				RecursionAvailable: true, AuthenticatedData: tc.ad}, Compress: true}
			m.Question = []dns.Question{{Name: k.name, Qtype: k.qtype, Qclass: k.qclass}}
			m.Answer, m.Ns, m.Extra = tc.rrs.answer, tc.rrs.ns, tc.rrs.extra
			want, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			got := viewBlob(blob)
			if !bytes.Equal(got.wire, want) {
				t.Fatalf("packed\n%x\nwant\n%x", got.wire, want)
			}
			if got.ttl != a.ttl || string(blobName(blob)) != k.name {
				t.Errorf("blob holds TTL %d and name %q, want %d and %q", got.ttl, blobName(blob), a.ttl, k.name)
			}
			var i int
			for _, section := range [][]dns.RR{tc.rrs.answer, tc.rrs.ns, tc.rrs.extra} {
				for _, r := range section {
					at := binary.BigEndian.Uint16(got.ttlAt[2*i:])
					if ttl := binary.BigEndian.Uint32(got.wire[at:]); ttl != r.Header().Ttl {
						t.Errorf("record %d: TTL offset %d reads %d, want %d", i, at, ttl, r.Header().Ttl)
					}
					i++
				}
			}
			if 2*i != len(got.ttlAt) {
				t.Errorf("%d TTL offsets for %d records", len(got.ttlAt)/2, i)
			}
		})
	}
}
