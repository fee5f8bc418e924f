package listener

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestParsePacked: which queries are read as plain ones, without
// unpacking, and what is read from them.
func TestParsePacked(t *testing.T) {
	base := func(edit func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("WwW.Example.com.", dns.TypeAAAA)
		m.Id = 0x1234
		if edit != nil {
			edit(m)
		}
		return mustPack(t, m)
	}
	edns := func(size uint16, do bool) func(*dns.Msg) {
		return func(m *dns.Msg) { m.SetEdns0(size, do) }
	}
	poke := func(raw []byte, off int, b ...byte) []byte {
		copy(raw[off:], b)
		return raw
	}
	plain := base(nil)
	withOPT := base(edns(1232, true))
	optAt := len(plain) // where the OPT record starts in withOPT
	for _, tc := range []struct {
		name string
		raw  []byte
		ok   bool
		want resolver.Request // checked when ok
	}{
		{name: "plain", raw: plain, ok: true,
			want: resolver.Request{Name: "WwW.Example.com.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET, RD: true, Limit: 512}},
		{name: "EDNS DO", raw: withOPT, ok: true,
			want: resolver.Request{Name: "WwW.Example.com.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET, RD: true, EDNS: true, DO: true, Limit: 1232}},
		{name: "EDNS size under 512", raw: base(edns(100, false)), ok: true,
			want: resolver.Request{Name: "WwW.Example.com.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET, RD: true, EDNS: true, Limit: 512}},
		{name: "EDNS with an option", raw: base(func(m *dns.Msg) {
			m.SetEdns0(4096, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		}), ok: true,
			want: resolver.Request{Name: "WwW.Example.com.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET, RD: true, EDNS: true, Limit: 4096}},
		{name: "AD CD no RD", raw: base(func(m *dns.Msg) { m.RecursionDesired, m.AuthenticatedData, m.CheckingDisabled = false, true, true }), ok: true,
			want: resolver.Request{Name: "WwW.Example.com.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET, AD: true, CD: true, Limit: 512}},
		{name: "root name", raw: func() []byte {
			m := new(dns.Msg)
			m.SetQuestion(".", dns.TypeNS)
			return mustPack(t, m)
		}(), ok: true, want: resolver.Request{Name: ".", Qtype: dns.TypeNS, Qclass: dns.ClassINET, RD: true, Limit: 512}},
		{name: "escaped octets", raw: func() []byte {
			m := new(dns.Msg)
			m.SetQuestion(`a\.b\000.example.`, dns.TypeA)
			return mustPack(t, m)
		}(), ok: true, want: resolver.Request{Name: `a\.b\000.example.`, Qtype: dns.TypeA, Qclass: dns.ClassINET, RD: true, Limit: 512}},

		{name: "response", raw: base(func(m *dns.Msg) { m.Response = true })},
		{name: "opcode NOTIFY", raw: base(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })},
		{name: "TC set", raw: base(func(m *dns.Msg) { m.Truncated = true })},
		{name: "AA set", raw: base(func(m *dns.Msg) { m.Authoritative = true })},
		{name: "rcode set", raw: base(func(m *dns.Msg) { m.Rcode = dns.RcodeNameError })},
		{name: "Z set", raw: base(func(m *dns.Msg) { m.Zero = true })},
		{name: "AXFR", raw: base(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAXFR })},
		{name: "IXFR", raw: base(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeIXFR })},
		{name: "qtype OPT", raw: base(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeOPT })},
		{name: "two questions", raw: base(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })},
		{name: "no question", raw: base(func(m *dns.Msg) { m.Question = nil })},
		{name: "an answer record", raw: base(func(m *dns.Msg) { m.Answer = answerA(m, 1).Answer })},
		{name: "an authority record", raw: base(func(m *dns.Msg) { m.Ns = answerA(m, 1).Answer })},
		{name: "additional not OPT", raw: base(func(m *dns.Msg) { m.Extra = answerA(m, 1).Answer })},
		{name: "two OPT records", raw: base(func(m *dns.Msg) { m.SetEdns0(1232, false); m.Extra = append(m.Extra, m.Extra[0]) })},
		{name: "EDNS version 1", raw: base(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) })},
		{name: "OPT length past the end", raw: poke(base(edns(1232, false)), optAt+9, 0, 4)},
		{name: "OPT not at the root", raw: poke(base(edns(1232, false)), optAt, 1)},
		{name: "bytes after the OPT", raw: append(base(edns(1232, false)), 0)},
		{name: "bytes after the question", raw: append(base(nil), 0)},
		{name: "question cut short", raw: plain[:len(plain)-2]},
		{name: "name cut short", raw: plain[:16]},
		{name: "header only", raw: plain[:12]},
		{name: "compressed name", raw: func() []byte {
			raw := append([]byte(nil), plain[:12]...)
			return append(raw, 0xC0, 12, 0, 1, 0, 1)
		}()},
		{name: "label type 0x40", raw: func() []byte {
			raw := append([]byte(nil), plain[:12]...)
			return append(raw, 0x41, 0, 0, 1, 0, 1)
		}()},
		{name: "name over 255 octets", raw: func() []byte {
			raw := append([]byte(nil), plain[:12]...)
			for range 5 {
				raw = append(raw, 63)
				raw = append(raw, make([]byte, 63)...)
			}
			return append(raw, 0, 0, 1, 0, 1)
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q resolver.Request
			ok := parsePacked(tc.raw, &q)
			if ok != tc.ok {
				t.Fatalf("parsePacked = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if q.QuestionEnd > len(tc.raw) || q.ID != binary.BigEndian.Uint16(tc.raw) {
				t.Errorf("QuestionEnd %d or ID %#x wrong", q.QuestionEnd, q.ID)
			}
			got := q
			got.QuestionEnd, got.ID = 0, 0
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// FuzzPacked checks parsePacked against the parse of every other query:
// whatever it accepts unpacks, passes validate, and reads as validate
// reads it.
func FuzzPacked(f *testing.F) {
	for _, seed := range querySeeds(f) {
		f.Add(seed.raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var q resolver.Request
		if !parsePacked(raw, &q) {
			return
		}
		msg := new(dns.Msg)
		if err := msg.Unpack(raw); err != nil {
			t.Fatalf("accepted a query that does not unpack: %v", err)
		}
		var v resolver.Request
		if rcode := validate(raw, msg, &v); rcode != dns.RcodeSuccess {
			t.Fatalf("accepted a query validate answers with rcode %d", rcode)
		}
		if rawHeader(raw).Opcode != dns.OpcodeQuery || msg.Response {
			t.Fatal("accepted a response or another opcode")
		}
		want := v.Question()
		got := q
		got.QuestionEnd = 0
		v.SetMsg(nil)
		if !reflect.DeepEqual(got, v) {
			t.Errorf("parsePacked read\n%+v\nvalidate\n%+v", got, v)
		}
		// The question's octets are the name, type and class.
		qn := make([]byte, 256)
		n, err := dns.PackDomainName(want.Name, qn, 0, nil, false)
		if err != nil || q.QuestionEnd != headerLen+n+4 {
			t.Errorf("QuestionEnd %d, want %d (%v)", q.QuestionEnd, headerLen+n+4, err)
		}
	})
}
