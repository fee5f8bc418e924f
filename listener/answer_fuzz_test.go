package listener

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// FuzzAnswer feeds arbitrary bytes, as a client's UDP datagram or TCP
// message, through the one path every query takes, against a resolver
// that answers from the query it is given. Its properties:
//
//   - nothing is sent back for fewer than 12 bytes or a response (QR=1);
//   - anything else gets an answer that unpacks, with QR set, the query's
//     ID, opcode and RD bit, no question but the client's own, no OPT
//     record unless the client sent one, and no hop-by-hop EDNS option;
//   - over UDP the answer fits 512 octets, or the client's EDNS size when
//     that is larger;
//   - the resolver only sees a non-response QUERY with one question that
//     is not a zone transfer, and at most once per query.
//
// The seed corpus in testdata/fuzz/FuzzAnswer holds queries captured from
// dig and kdig; f.Add below adds the malformed and unusual ones.
func FuzzAnswer(f *testing.F) {
	for _, seed := range querySeeds(f) {
		f.Add(seed.raw, false)
		f.Add(seed.raw, true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		tr := resolver.UDP
		if tcp {
			tr = resolver.TCP
		}
		calls := 0
		res := msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			calls++
			checkResolverQuery(t, raw, q)
			return answerFrom(q)
		})
		s, err := New(Options{
			Addrs:    []netip.AddrPort{loopback},
			Resolver: res,
			// Debug, so that the per-query logging runs on the input too.
			Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Shutdown(context.Background())

		wire := answerOnce(s, raw, netip.MustParseAddrPort("192.168.1.20:40000"), tr)
		if calls > 1 {
			t.Errorf("resolver called %d times for one query", calls)
		}
		if len(raw) < headerLen || raw[2]&flagQR != 0 {
			if len(wire) != 0 {
				t.Fatalf("answered %d bytes to a datagram that is too short or a response", len(raw))
			}
			return
		}
		if len(wire) == 0 {
			t.Fatal("no answer to a query")
		}
		checkAnswerWire(t, raw, wire, tr)
	})
}

// checkResolverQuery checks what the listener hands the resolver for the
// client's query raw.
func checkResolverQuery(t *testing.T, raw []byte, q *dns.Msg) {
	t.Helper()
	switch {
	case len(q.Question) != 1:
		t.Errorf("resolver got %d questions", len(q.Question))
	case q.Opcode != dns.OpcodeQuery:
		t.Errorf("resolver got opcode %s", dns.OpcodeToString[q.Opcode])
	case q.Response:
		t.Errorf("resolver got a response")
	case q.Question[0].Qtype == dns.TypeAXFR || q.Question[0].Qtype == dns.TypeIXFR:
		t.Errorf("resolver got a zone transfer")
	case q.Id != binary.BigEndian.Uint16(raw):
		t.Errorf("resolver got ID %#x, the query has %#x", q.Id, binary.BigEndian.Uint16(raw))
	}
}

// answerFrom is a resolver that answers q from q alone, as differently as
// the fuzzer's queries differ: by the ID it fails, returns nothing, or
// answers with as many A records as the name has octets (so that answers
// to long names need truncating), in lower case, with upstream's own EDNS
// options when it likes.
func answerFrom(q *dns.Msg) (*dns.Msg, error) {
	switch q.Id % 8 {
	case 0:
		return nil, &resolver.Error{Code: dns.ExtendedErrorCodeNetworkError, Text: "fuzz", Err: errors.New("fuzz")}
	case 1:
		return nil, nil
	}
	name := q.Question[0].Name
	m := new(dns.Msg).SetReply(q)
	m.Question[0].Name = dns.CanonicalName(name)
	for i := range len(name) {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(198, 51, byte(i>>8), byte(i)),
		})
	}
	if q.Id%2 == 0 {
		m.SetEdns0(4096, true)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option,
			&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: "fuzz"},
			&dns.EDNS0_PADDING{Padding: make([]byte, 64)},
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
			&dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Timeout: 100})
	}
	return m, nil
}

// checkAnswerWire checks the answer wire that the client's query raw got
// over tr.
func checkAnswerWire(t *testing.T, raw, wire []byte, tr resolver.Transport) {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatalf("answer does not unpack: %v\n%x", err, wire)
	}
	hdr := rawHeader(raw)
	if !m.Response || m.Id != hdr.Id || m.Opcode != hdr.Opcode || m.RecursionDesired != hdr.RecursionDesired {
		t.Fatalf("answer QR %v ID %#x opcode %d RD %v; query ID %#x opcode %d RD %v",
			m.Response, m.Id, m.Opcode, m.RecursionDesired, hdr.Id, hdr.Opcode, hdr.RecursionDesired)
	}

	// What the client sent, as far as it parses.
	in := new(dns.Msg)
	parsed := in.Unpack(raw) == nil
	var clientOPTs int
	var clientSize uint16
	if parsed {
		for _, rr := range in.Extra {
			if opt, ok := rr.(*dns.OPT); ok {
				clientOPTs++
				clientSize = opt.UDPSize()
			}
		}
	}

	limit := dns.MaxMsgSize
	if tr == resolver.UDP {
		limit = dns.MinMsgSize
		if clientOPTs == 1 {
			limit = max(limit, int(clientSize))
		}
	}
	if len(wire) > limit {
		t.Errorf("%d-octet answer over %s; the client takes %d", len(wire), tr, limit)
	}
	if len(m.Question) > 0 {
		if !parsed || len(m.Question) != 1 || len(in.Question) == 0 || m.Question[0] != in.Question[0] {
			t.Errorf("answer question %v; the query's is %v", m.Question, in.Question)
		}
	}
	var opts int
	for _, rr := range m.Extra {
		opt, ok := rr.(*dns.OPT)
		if !ok {
			continue
		}
		opts++
		for _, o := range opt.Option {
			if hopByHop(o.Option()) {
				t.Errorf("answer carries hop-by-hop EDNS option %d", o.Option())
			}
		}
	}
	if opts > 1 || opts == 1 && clientOPTs == 0 {
		t.Errorf("answer has %d OPT records; the query had %d", opts, clientOPTs)
	}
}

// querySeed is a query for the seed corpus, and what it is.
type querySeed struct {
	what string
	raw  []byte
}

// querySeeds are queries that dig and kdig do not send (other opcodes,
// malformed and truncated messages, compression loops) and a few that
// they do, made here.
func querySeeds(tb testing.TB) []querySeed {
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	q := func(id uint16, name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg).SetQuestion(name, qtype)
		m.Id = id
		return m
	}
	a := pack(q(0x0102, "example.com.", dns.TypeA))
	withEDNS := q(0x0203, "example.com.", dns.TypeAAAA)
	withEDNS.SetEdns0(1232, true)
	withEDNS.IsEdns0().Option = []dns.EDNS0{
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "24a5ac3f8b6e2c01"},
		&dns.EDNS0_PADDING{Padding: make([]byte, 40)},
	}
	notify := q(0x0304, "example.com.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	update := q(0x0405, "example.com.", dns.TypeSOA)
	update.Opcode = dns.OpcodeUpdate
	long := q(0x0506, strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789.", 6), dns.TypeA)
	tiny := q(0x0607, ".", dns.TypeNS)
	tiny.SetEdns0(100, false) // below 512: the client still gets 512
	twoOPT := q(0x0708, "example.com.", dns.TypeA)
	twoOPT.SetEdns0(1232, false)
	twoOPT.Extra = append(twoOPT.Extra, twoOPT.Extra[0])
	badVers := q(0x0809, "example.com.", dns.TypeA)
	badVers.SetEdns0(1232, false)
	badVers.IsEdns0().SetVersion(1)
	withAnswer := q(0x090a, "example.com.", dns.TypeA)
	withAnswer.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(192, 0, 2, 1)}}

	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	const rd = 1 << 8
	typeClass := []byte{0, 1, 0, 1}
	return []querySeed{
		{"A", a},
		{"AAAA with EDNS, DO, cookie and padding", pack(withEDNS)},
		{"ANY", pack(q(0x0a0b, "example.com.", dns.TypeANY))},
		{"AXFR", pack(q(0x0b0c, "example.com.", dns.TypeAXFR))},
		{"NOTIFY", pack(notify)},
		{"UPDATE", pack(update)},
		{"a long name, a long answer", pack(long)},
		{"EDNS size below 512", pack(tiny)},
		{"two OPT records", pack(twoOPT)},
		{"EDNS version 1", pack(badVers)},
		{"a query with an answer section", pack(withAnswer)},
		{"one octet short of a header", a[:11]},
		{"a header alone", a[:12]},
		{"the question's class cut off", a[:len(a)-2]},
		{"type and class cut off", a[:len(a)-4]},
		{"trailing bytes", cat(a, a)},
		{"no question", rawHeaderBytes(0x1111, rd, 0, 0, 0, 0)},
		{"QR set", rawHeaderBytes(0x1212, rd|0x8000, 1, 0, 0, 0)},
		{"QDCOUNT 2, one question", cat(rawHeaderBytes(0x1313, rd, 2, 0, 0, 0), a[12:])},
		{"pointer to itself", cat(rawHeaderBytes(0x1414, rd, 1, 0, 0, 0), []byte{0xc0, 12}, typeClass)},
		{"pointer back into its own label", cat(rawHeaderBytes(0x1515, rd, 1, 0, 0, 0), []byte{1, 'a', 0xc0, 14}, typeClass)},
		{"two pointers to each other", cat(rawHeaderBytes(0x1616, rd, 1, 0, 0, 0), []byte{0xc0, 14, 0xc0, 12}, typeClass)},
		{"pointer past the end", cat(rawHeaderBytes(0x1717, rd, 1, 0, 0, 0), []byte{0xc0, 0xff}, typeClass)},
		{"reserved label type", cat(rawHeaderBytes(0x1818, rd, 1, 0, 0, 0), []byte{0x40, 'a'}, typeClass)},
		{"OPT rdata cut short", cat(rawHeaderBytes(0x1919, rd, 1, 0, 0, 1), a[12:], []byte{0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 8})},
	}
}
