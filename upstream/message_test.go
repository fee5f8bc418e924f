package upstream

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// nameOfLen returns a domain name whose wire form is n octets: 1 (the
// root) or 3 to 255.
func nameOfLen(n int) string {
	var b strings.Builder
	for left := n - 1; left > 0; { // the root label takes one octet
		cost := min(left, 64) // a label of up to 63 octets, plus its length
		if left-cost == 1 {
			cost-- // leave room for one more label, which costs at least 2
		}
		b.WriteString(strings.Repeat("x", cost-1) + ".")
		left -= cost
	}
	if b.Len() == 0 {
		return "."
	}
	return b.String()
}

func TestPackQuery(t *testing.T) {
	variants := []struct {
		name   string
		edit   func(*dns.Msg)
		wantDO bool
	}{
		{name: "no EDNS", edit: func(*dns.Msg) {}},
		{name: "EDNS, DO", edit: func(q *dns.Msg) { q.SetEdns0(4096, true) }, wantDO: true},
		{name: "client options", edit: func(q *dns.Msg) {
			q.SetEdns0(512, false)
			q.IsEdns0().Option = []dns.EDNS0{
				&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
				&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0)},
				&dns.EDNS0_PADDING{Padding: make([]byte, 77)},
				&dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE},
			}
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for n := 1; n <= 255; n++ {
				if n == 2 {
					continue // no name is two octets long
				}
				q := query(nameOfLen(n), dns.TypeAAAA)
				q.Id = 0xbeef
				q.CheckingDisabled = true
				v.edit(q)
				orig := q.String()
				wire, err := packQuery(q)
				if err != nil {
					t.Fatalf("name of %d octets: %v", n, err)
				}
				if got := len(q.Question[0].Name) + 1; n > 1 && got != n {
					t.Fatalf("test name %q is %d octets, want %d", q.Question[0].Name, got, n)
				}
				if len(wire)%paddingBlock != 0 {
					t.Fatalf("name of %d octets: query is %d octets, not a multiple of %d", n, len(wire), paddingBlock)
				}
				m := new(dns.Msg)
				if err := m.Unpack(wire); err != nil {
					t.Fatalf("name of %d octets: %v", n, err)
				}
				if m.Id != 0 || !m.CheckingDisabled || !m.RecursionDesired || m.Question[0] != q.Question[0] {
					t.Fatalf("name of %d octets: header or question changed: %v", n, m)
				}
				opt := m.IsEdns0()
				if opt == nil || len(m.Extra) != 1 {
					t.Fatalf("name of %d octets: want exactly our OPT, got %v", n, m.Extra)
				}
				if opt.UDPSize() != ednsUDPSize || opt.Do() != v.wantDO {
					t.Errorf("name of %d octets: OPT size %d DO %v", n, opt.UDPSize(), opt.Do())
				}
				if len(opt.Option) != 1 || opt.Option[0].Option() != dns.EDNS0PADDING {
					t.Fatalf("name of %d octets: options %v, want only our padding", n, opt.Option)
				}
				if q.String() != orig {
					t.Fatalf("packQuery modified the query")
				}
			}
		})
	}
}

// TestPackQueryEscapedNames: names whose presentation form is longer than
// their wire form still pad to whole blocks.
func TestPackQueryEscapedNames(t *testing.T) {
	for _, name := range []string{`a\.b.example.`, `\065\066c.example.`, `\200\255.example.`, `sp\ ace.example.`} {
		t.Run(name, func(t *testing.T) {
			for extra := range 130 {
				q := query(strings.Repeat("x", extra%63+1)+"."+name, dns.TypeTXT)
				wire, err := packQuery(q)
				if err != nil {
					t.Fatal(err)
				}
				if len(wire)%paddingBlock != 0 {
					t.Fatalf("%s: %d octets", q.Question[0].Name, len(wire))
				}
			}
		})
	}
}

func TestCheckAnswer(t *testing.T) {
	q := dns.Question{Name: "www.Example.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	answer := func(edit func(*dns.Msg)) *dns.Msg {
		m := new(dns.Msg)
		m.Response = true
		m.Question = []dns.Question{q}
		edit(m)
		return m
	}
	tests := []struct {
		name string
		r    *dns.Msg
		ok   bool
	}{
		{"match", answer(func(*dns.Msg) {}), true},
		{"other letter case", answer(func(m *dns.Msg) { m.Question[0].Name = "WWW.example." }), true},
		{"QR unset", answer(func(m *dns.Msg) { m.Response = false }), false},
		{"no question", answer(func(m *dns.Msg) { m.Question = nil }), false},
		{"no question, FORMERR", answer(func(m *dns.Msg) { m.Question, m.Rcode = nil, dns.RcodeFormatError }), true},
		{"no question, REFUSED", answer(func(m *dns.Msg) { m.Question, m.Rcode = nil, dns.RcodeRefused }), true},
		{"two questions", answer(func(m *dns.Msg) { m.Question = append(m.Question, q) }), false},
		{"other name", answer(func(m *dns.Msg) { m.Question[0].Name = "ww.example." }), false},
		{"other type", answer(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA }), false},
		{"other class", answer(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAnswer(tt.r, q)
			if (err == nil) != tt.ok {
				t.Fatalf("checkAnswer: %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadAnswer) {
				t.Errorf("%v does not wrap ErrBadAnswer", err)
			}
		})
	}
}

func TestRestore(t *testing.T) {
	q := query("WwW.ExAmPlE.", dns.TypeA)
	q.Id = 1234
	tests := []struct {
		name        string
		options     []dns.EDNS0 // nil: no OPT in the answer
		wantOptions []uint16
	}{
		{name: "no OPT"},
		{name: "padding only", options: []dns.EDNS0{&dns.EDNS0_PADDING{Padding: make([]byte, 40)}}, wantOptions: []uint16{}},
		{name: "padding dropped, EDE kept", options: []dns.EDNS0{
			&dns.EDNS0_PADDING{Padding: make([]byte, 40)},
			&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer},
		}, wantOptions: []uint16{dns.EDNS0EDE}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := new(dns.Msg)
			r.SetReply(query("www.example.", dns.TypeA))
			r.Id = 999
			if tt.options != nil {
				r.SetEdns0(ednsUDPSize, false)
				r.IsEdns0().Option = tt.options
			}
			restore(r, q)
			if r.Id != q.Id || r.Question[0] != q.Question[0] {
				t.Errorf("restored ID %d question %v, want %d %v", r.Id, r.Question[0], q.Id, q.Question[0])
			}
			opt := r.IsEdns0()
			if (opt != nil) != (tt.options != nil) {
				t.Fatalf("OPT %v, want one: %v", opt, tt.options != nil)
			}
			if opt == nil {
				return
			}
			var got []uint16
			for _, o := range opt.Option {
				got = append(got, o.Option())
			}
			if len(got) != len(tt.wantOptions) || (len(got) > 0 && got[0] != tt.wantOptions[0]) {
				t.Errorf("options %v, want %v", got, tt.wantOptions)
			}
		})
	}
}

// TestAppendQuery: appendQuery appends packQuery's octets to what dst
// holds, for the common query and for one only dns.Msg packs.
func TestAppendQuery(t *testing.T) {
	plain := query("example.com.", dns.TypeA)
	plain.SetEdns0(4096, true)
	general := query("example.com.", dns.TypeA)
	general.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "com.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "a.gtld-servers.net."}}
	for name, q := range map[string]*dns.Msg{"plain": plain, "through dns.Msg": general} {
		want, err := packQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("prefix")
		got, err := appendQuery(append(make([]byte, 0, 8), prefix...), q)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[:len(prefix)]) != string(prefix) || string(got[len(prefix):]) != string(want) {
			t.Errorf("%s: appended\n%x\nwant %x then\n%x", name, got, prefix, want)
		}
	}
}
