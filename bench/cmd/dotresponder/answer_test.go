package main

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestAppendAnswer(t *testing.T) {
	a := newAnswerer(netip.MustParseAddr("192.0.2.1"), 3600)
	tests := []struct {
		name    string
		qtype   uint16
		edns    bool
		do      bool
		answers int
	}{
		{"A", dns.TypeA, false, false, 1},
		{"A with EDNS", dns.TypeA, true, false, 1},
		{"A with DO", dns.TypeA, true, true, 1},
		{"NS is NODATA", dns.TypeNS, false, false, 0},
		{"AAAA with EDNS is NODATA", dns.TypeAAAA, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := new(dns.Msg).SetQuestion("Q1.bench.test.", tt.qtype)
			q.Id = 4242
			if tt.edns {
				q.SetEdns0(4096, tt.do)
				opt := q.IsEdns0()
				opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, 40)})
			}
			wire, err := q.Pack()
			if err != nil {
				t.Fatal(err)
			}
			out := a.appendAnswer([]byte{9}, wire)
			r := new(dns.Msg)
			if err := r.Unpack(out[1:]); err != nil {
				t.Fatalf("unpacking answer: %v", err)
			}
			if r.Id != q.Id || !r.Response || r.Rcode != dns.RcodeSuccess || !r.RecursionAvailable || !r.RecursionDesired {
				t.Errorf("header %+v", r.MsgHdr)
			}
			if len(r.Question) != 1 || r.Question[0] != q.Question[0] {
				t.Errorf("question %v", r.Question)
			}
			if len(r.Answer) != tt.answers {
				t.Fatalf("answers %v", r.Answer)
			}
			if tt.answers == 1 {
				rr := r.Answer[0].(*dns.A)
				if rr.A.String() != "192.0.2.1" || rr.Hdr.Ttl != 3600 || rr.Hdr.Name != "Q1.bench.test." {
					t.Errorf("answer %v", rr)
				}
			}
			opt := r.IsEdns0()
			if (opt != nil) != tt.edns || (opt != nil && opt.Do() != tt.do) {
				t.Errorf("OPT %v, want edns %v do %v", opt, tt.edns, tt.do)
			}
		})
	}
}

func TestAppendAnswerRejects(t *testing.T) {
	a := newAnswerer(netip.MustParseAddr("192.0.2.1"), 60)
	ok, _ := new(dns.Msg).SetQuestion("x.test.", dns.TypeA).Pack()
	for name, q := range map[string][]byte{
		"short":     ok[:5],
		"cut name":  ok[:headerLen+3],
		"cut type":  ok[:len(ok)-2],
		"response":  append([]byte{0, 1, flagQR}, ok[3:]...),
		"pointer":   append(append([]byte{}, ok[:headerLen]...), 0xC0, 0x0C, 0, 1, 0, 1),
		"2 queries": append(append([]byte{}, ok[:4]...), append([]byte{0, 2}, ok[6:]...)...),
	} {
		if out := a.appendAnswer(nil, q); len(out) != 0 {
			t.Errorf("%s: answered %x", name, out)
		}
	}
}
