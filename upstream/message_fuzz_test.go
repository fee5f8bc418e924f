package upstream

import (
	"bytes"
	"testing"

	"github.com/miekg/dns"
)

// FuzzPackQuery packs a query for any name that could be forwarded (one
// as it comes off the wire) with any type, ID and EDNS. Properties: the query
// upstream is a multiple of paddingBlock octets, padded by less than one
// block with zeros; it has ID 0, the client's header flags and question,
// and exactly our OPT record (our UDP size, the client's DO bit, no option
// but padding); the client's query is left as it was; and the octets are
// those packQueryMsg writes through dns.Msg.
func FuzzPackQuery(f *testing.F) {
	for _, s := range []struct {
		name  string
		qtype uint16
	}{
		{".", dns.TypeNS},
		{"example.com.", dns.TypeA},
		{"WwW.ExAmPlE.CoM.", dns.TypeAAAA},
		{`a\.b.example.`, dns.TypeTXT},
		{`\000\255\ .example.`, dns.TypeANY},
		{nameOfLen(255), dns.TypeA},
		{nameOfLen(128 - 12 - 4 - 11 - 4 - 1), dns.TypeSOA}, // padding option would start a new block
	} {
		f.Add(s.name, s.qtype, uint16(0xbeef), false, false)
		f.Add(s.name, s.qtype, uint16(0xbeef), true, true)
	}
	f.Fuzz(func(t *testing.T, name string, qtype, id uint16, edns, do bool) {
		if !offTheWire(name) {
			return
		}
		q := new(dns.Msg).SetQuestion(name, qtype)
		q.Id, q.CheckingDisabled = id, true
		q.RecursionDesired, q.AuthenticatedData, q.Zero = id&1 == 0, id&2 != 0, id&4 != 0
		if edns {
			q.SetEdns0(4096, do)
			q.IsEdns0().Option = []dns.EDNS0{
				&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
				&dns.EDNS0_PADDING{Padding: make([]byte, 7)},
			}
		}
		before, err := q.Pack()
		if err != nil {
			return
		}
		wire, err := packQuery(q)
		if err != nil {
			t.Fatalf("packQuery(%q): %v", name, err)
		}
		if after, _ := q.Pack(); !bytes.Equal(after, before) {
			t.Fatal("packQuery changed the client's query")
		}
		// The plain query's own packer writes what dns.Msg writes.
		if general, err := packQueryMsg(q); err != nil || !bytes.Equal(general, wire) {
			t.Fatalf("packQuery wrote\n%x\npacked through dns.Msg (%v)\n%x", wire, err, general)
		}
		if len(wire)%paddingBlock != 0 {
			t.Fatalf("%d octets, not a multiple of %d", len(wire), paddingBlock)
		}
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			t.Fatalf("query upstream does not unpack: %v", err)
		}
		if m.Id != 0 || m.Response || m.RecursionDesired != q.RecursionDesired || m.AuthenticatedData != q.AuthenticatedData ||
			m.Zero != q.Zero || !m.CheckingDisabled || m.Opcode != dns.OpcodeQuery {
			t.Fatalf("header %+v", m.MsgHdr)
		}
		if len(m.Question) != 1 || m.Question[0].Name != name ||
			m.Question[0].Qtype != qtype || m.Question[0].Qclass != dns.ClassINET {
			t.Fatalf("question %v, want %q %d", m.Question, name, qtype)
		}
		opt := m.IsEdns0()
		if len(m.Extra) != 1 || opt == nil {
			t.Fatalf("additional section %v, want our OPT alone", m.Extra)
		}
		if opt.UDPSize() != ednsUDPSize || opt.Do() != (edns && do) || opt.Version() != 0 {
			t.Fatalf("OPT size %d DO %v version %d", opt.UDPSize(), opt.Do(), opt.Version())
		}
		if len(opt.Option) != 1 {
			t.Fatalf("EDNS options %v, want padding alone", opt.Option)
		}
		pad, ok := opt.Option[0].(*dns.EDNS0_PADDING)
		if !ok {
			t.Fatalf("EDNS option %v, want padding", opt.Option[0])
		}
		if len(pad.Padding) >= paddingBlock || !bytes.Equal(pad.Padding, make([]byte, len(pad.Padding))) {
			t.Fatalf("%d octets of padding %x", len(pad.Padding), pad.Padding)
		}
	})
}

// offTheWire reports whether name is as miekg/dns unpacks names: the
// only names the listener forwards. It is not enough that it packs:
// miekg/dns packs a name of 256 octets, which it will not unpack
// (testdata/fuzz/FuzzPackQuery/name-of-256-octets), and packs as the root
// a string such as `é\.` whose final dot is escaped, taking it for fully
// qualified (not-a-domain-name, non-ascii-before-escaped-dot).
func offTheWire(name string) bool {
	wire := make([]byte, 256)
	n, err := dns.PackDomainName(name, wire, 0, nil, false)
	if err != nil {
		return false
	}
	back, _, err := dns.UnpackDomainName(wire[:n], 0)
	return err == nil && back == name
}
