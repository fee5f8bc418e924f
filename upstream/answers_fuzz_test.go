package upstream

import (
	"encoding/hex"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// realAnswers are answers Unbound 1.17.1 sent over TCP to queries for
// local data, as hex.
var realAnswers = []struct{ name, hex string }{
	{"A, EDNS", "a19485800001000100000001076578616d706c6503636f6d0000010001c00c000100010000012c0004c000020100002904d0000000000000"},
	{"A, no EDNS", "345c85800001000100000000076578616d706c6503636f6d0000010001c00c000100010000012c0004c0000201"},
	{"AAAA", "62e885800001000100000001076578616d706c6503636f6d00001c0001c00c001c00010000012c001020010db800000000000000000000000100002904d0000000000000"},
	{"CNAME", "76c18580000100010000000103777777076578616d706c6503636f6d0000010001c00c000500010000012c0002c01000002904d0000000000000"},
	{"MX, DO", "3ec385800001000100000001076578616d706c6503636f6d00000f0001c00c000f00010000012c0009000a046d61696cc00c00002904d0000080000000"},
	{"NXDOMAIN", "93ee85830001000000010001046e6f7065076578616d706c6503636f6d0000010001c011000600010000012c0027036e7331c0110a686f73746d6173746572c01178a3f17500000e1000000258000151800000012c00002904d0000000000000"},
	{"NODATA", "0ba785800001000000010001076578616d706c6503636f6d0000210001c00c000600010000012c0027036e7331c00c0a686f73746d6173746572c00c78a3f17500000e1000000258000151800000012c00002904d0000000000000"},
	{"ANY", "71f785800001000000010001076578616d706c6503636f6d0000ff0001c00c000600010000012c0027036e7331c00c0a686f73746d6173746572c00c78a3f17500000e1000000258000151800000012c00002904d0000000000000"},
	{"REFUSED", "acbd85850001000000000001017807726566757365640474657374000001000100002904d0000000000000"},
}

// answerSeeds returns the seed answers of the fuzz targets: the real
// ones, then what a resolver should not send but might (padding, two OPT
// records, no question, the wrong question), then broken messages.
func answerSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, a := range realAnswers {
		b, err := hex.DecodeString(a.hex)
		if err != nil {
			tb.Fatalf("%s: %v", a.name, err)
		}
		seeds = append(seeds, b)
	}
	pack := func(edit func(m *dns.Msg)) []byte {
		m := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
		m.Response, m.RecursionAvailable = true, true
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A:   net.IPv4(192, 0, 2, 1),
		}}
		edit(m)
		b, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	padding := func(n int) dns.EDNS0 { return &dns.EDNS0_PADDING{Padding: make([]byte, n)} }
	opt := func(options ...dns.EDNS0) *dns.OPT {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}, Option: options}
		o.SetUDPSize(1232)
		return o
	}
	seeds = append(seeds,
		pack(func(m *dns.Msg) { m.Extra = []dns.RR{opt(padding(400))} }),
		pack(func(m *dns.Msg) {
			m.Extra = []dns.RR{opt(&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer}, padding(20),
				&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708a1a2a3a4a5a6a7a8"})}
		}),
		// Padding in an OPT record other than the last: restore used to
		// leave it.
		pack(func(m *dns.Msg) { m.Extra = []dns.RR{opt(padding(30)), opt(padding(40))} }),
		pack(func(m *dns.Msg) { m.Question, m.Answer, m.Rcode = nil, nil, dns.RcodeServerFailure }),
		pack(func(m *dns.Msg) { m.Question, m.Answer = nil, nil }),
		pack(func(m *dns.Msg) { m.Response = false }),
		pack(func(m *dns.Msg) { m.Question[0].Name = "EXAMPLE.COM." }),
		pack(func(m *dns.Msg) { m.Question[0].Name = "example.net." }),
		pack(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA }),
		pack(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }),
		pack(func(m *dns.Msg) { m.Truncated, m.Answer = true, nil }),
	)
	a := seeds[0]
	seeds = append(seeds,
		a[:1],        // no whole ID
		a[:12],       // a header alone
		a[:len(a)-5], // cut in the OPT record
		append([]byte{a[0], a[1], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}, 0xc0, 12, 0, 1, 0, 1), // a question that points at itself
	)
	return seeds
}
