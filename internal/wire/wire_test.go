package wire

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// TestWalk walks a compressed answer record by record and finds every
// TTL where dns.Msg put it.
func TestWalk(t *testing.T) {
	m := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
	m.Response, m.Compress = true, true
	m.Answer = []dns.RR{
		&dns.CNAME{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 111}, Target: "edge.example.com."},
		&dns.A{Hdr: dns.RR_Header{Name: "edge.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 222}, A: net.IPv4(192, 0, 2, 1)},
	}
	raw, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	off, err := SkipName(raw, HeaderLen)
	if err != nil || off != HeaderLen+len("www.example.com.")+1 {
		t.Fatalf("SkipName = %d, %v", off, err)
	}
	off += 4
	for i, want := range []struct {
		rrtype uint16
		ttl    uint32
	}{{dns.TypeCNAME, 111}, {dns.TypeA, 222}} {
		r, err := NextRecord(raw, off)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		ttl := uint32(raw[r.TTLAt])<<24 | uint32(raw[r.TTLAt+1])<<16 | uint32(raw[r.TTLAt+2])<<8 | uint32(raw[r.TTLAt+3])
		if r.Type != want.rrtype || ttl != want.ttl {
			t.Errorf("record %d: type %d TTL %d, want %d %d", i, r.Type, ttl, want.rrtype, want.ttl)
		}
		off = r.End
	}
	if off != len(raw) {
		t.Errorf("walk ended at %d of %d", off, len(raw))
	}
	for _, bad := range [][]byte{
		{3, 'w', 'w'},                        // ends inside a label
		{0xC0},                               // half a pointer
		{0x80, 0},                            // reserved label type
		{0},                                  // a root name and no record after it
		{0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 9, 1}, // RDATA runs past the end
	} {
		if _, err := NextRecord(bad, 0); err == nil {
			t.Errorf("NextRecord(%x) accepted it", bad)
		}
	}
}
