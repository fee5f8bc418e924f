package listener

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// rawHeaderBytes builds a 12-byte header with the given ID, flag bits
// (opcode included) and section counts.
func rawHeaderBytes(id, bits, qd, an, ns, ar uint16) []byte {
	var b []byte
	for _, v := range []uint16{id, bits, qd, an, ns, ar} {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func TestBadInput(t *testing.T) {
	const rd = 1 << 8
	name := []byte("\x07example\x03com\x00")
	withOpcode := func(op int) []byte {
		m := new(dns.Msg).SetQuestion("example.com.", dns.TypeSOA)
		m.Id, m.Opcode = 0x2222, op
		return mustPack(t, m)
	}
	withEDNS := func(version uint8, opts int) []byte {
		m := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
		m.Id = 0x3333
		for range opts {
			opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			opt.SetUDPSize(1232)
			opt.SetVersion(version)
			m.Extra = append(m.Extra, opt)
		}
		return mustPack(t, m)
	}
	// optIn puts an OPT record owned by owner in the section sec of a
	// query: 1 answer, 2 authority, 3 additional.
	optIn := func(sec int, owner string) []byte {
		m := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
		m.Id = 0x9999
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(1232)
		switch sec {
		case 1:
			m.Answer = append(m.Answer, opt)
		case 2:
			m.Ns = append(m.Ns, opt)
		default:
			m.Extra = append(m.Extra, opt)
		}
		return mustPack(t, m)
	}
	twoQuestions := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	twoQuestions.Id = 0x4444
	twoQuestions.Question = append(twoQuestions.Question, dns.Question{Name: "b.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	response := answerA(new(dns.Msg).SetQuestion("example.com.", dns.TypeA), 1)

	tests := []struct {
		name      string
		raw       []byte
		dropped   bool
		id        uint16
		rcode     int
		wantEDNS0 bool // the reply carries an OPT of version 0
	}{
		{name: "short packet dropped", raw: []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0}, dropped: true},
		{name: "QR=1 dropped", raw: mustPack(t, response), dropped: true},
		{name: "garbage after header", raw: append(rawHeaderBytes(0xbeef, rd, 1, 0, 0, 0), "\x3fabc"...), id: 0xbeef, rcode: dns.RcodeFormatError},
		{name: "QDCOUNT 0", raw: rawHeaderBytes(0x1111, rd, 0, 0, 0, 0), id: 0x1111, rcode: dns.RcodeFormatError},
		{name: "QDCOUNT 2", raw: mustPack(t, twoQuestions), id: 0x4444, rcode: dns.RcodeFormatError},
		{name: "QDCOUNT 2 with one question", raw: append(rawHeaderBytes(0x5555, rd, 2, 0, 0, 0), append(name, 0, 1, 0, 1)...), id: 0x5555, rcode: dns.RcodeFormatError},
		{name: "question without type and class", raw: append(rawHeaderBytes(0x6666, rd, 1, 0, 0, 0), name...), id: 0x6666, rcode: dns.RcodeFormatError},
		{name: "opcode NOTIFY", raw: withOpcode(dns.OpcodeNotify), id: 0x2222, rcode: dns.RcodeNotImplemented},
		{name: "opcode UPDATE", raw: withOpcode(dns.OpcodeUpdate), id: 0x2222, rcode: dns.RcodeNotImplemented},
		{name: "AXFR", raw: packQuery(t, 0x7777, "example.com.", dns.TypeAXFR, 0), id: 0x7777, rcode: dns.RcodeRefused},
		{name: "IXFR", raw: packQuery(t, 0x8888, "example.com.", dns.TypeIXFR, 1232), id: 0x8888, rcode: dns.RcodeRefused, wantEDNS0: true},
		{name: "EDNS version 1", raw: withEDNS(1, 1), id: 0x3333, rcode: dns.RcodeBadVers, wantEDNS0: true},
		{name: "two OPT records", raw: withEDNS(0, 2), id: 0x3333, rcode: dns.RcodeFormatError},
		{name: "OPT in the answer section", raw: optIn(1, "."), id: 0x9999, rcode: dns.RcodeFormatError},
		{name: "OPT in the authority section", raw: optIn(2, "."), id: 0x9999, rcode: dns.RcodeFormatError},
		{name: "OPT owned by a name", raw: optIn(3, "example.com."), id: 0x9999, rcode: dns.RcodeFormatError},
	}
	var calls atomic.Int32
	s, _ := startServer(t, Options{Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		if q.Question[0].Name != "good.example." {
			t.Errorf("resolver got a bad query: %v", q)
		}
		calls.Add(1)
		return echo(ctx, q)
	})})
	for _, tt := range tests {
		for tr, c := range clients(t, s) {
			t.Run(tr+"/"+tt.name, func(t *testing.T) {
				c.send(t, tt.raw)
				if tt.dropped {
					// No reply to the first, so the first reply is the second's.
					c.send(t, packQuery(t, 0xaaaa, "good.example.", dns.TypeA, 0))
					if m, _ := c.recv(t); m.Id != 0xaaaa {
						t.Fatalf("got a reply to a dropped query: %v", m)
					}
					return
				}
				m, _ := c.recv(t)
				if m.Id != tt.id || m.Rcode != tt.rcode || !m.Response {
					t.Fatalf("got ID %#x rcode %s QR %v, want ID %#x rcode %s QR", m.Id,
						dns.RcodeToString[m.Rcode], m.Response, tt.id, dns.RcodeToString[tt.rcode])
				}
				if opt := m.IsEdns0(); tt.wantEDNS0 != (opt != nil) || opt != nil && opt.Version() != 0 {
					t.Errorf("reply OPT %v, want one of version 0: %v", opt, tt.wantEDNS0)
				}
			})
		}
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("resolver called %d times, want 4 (the good queries after the dropped ones)", n)
	}
}

func TestTrailingBytesNotForwarded(t *testing.T) {
	clean := packQuery(t, 0x1234, "example.com.", dns.TypeA, 1232)
	got := make(chan []byte, 2)
	s, _ := startServer(t, Options{Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		b, err := q.Pack()
		if err != nil {
			return nil, err
		}
		got <- b
		return echo(ctx, q)
	})})
	for tr, c := range clients(t, s) {
		t.Run(tr, func(t *testing.T) {
			c.send(t, append(bytes.Clone(clean), "trailing garbage"...))
			if m, _ := c.recv(t); m.Rcode != dns.RcodeSuccess {
				t.Fatalf("rcode %s", dns.RcodeToString[m.Rcode])
			}
			if b := <-got; !bytes.Equal(b, clean) {
				t.Errorf("resolver saw %x, want %x", b, clean)
			}
		})
	}
}

func TestResponseShaping(t *testing.T) {
	ede := &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeFiltered, ExtraText: "blocked"}
	// upstream is what a resolver might hand back: another ID, the
	// question lower-cased, and upstream's own EDNS options.
	upstream := func(q *dns.Msg) *dns.Msg {
		m := answerA(q, 1)
		m.Id = q.Id + 1
		m.Question[0].Name = strings.ToLower(m.Question[0].Name)
		m.SetEdns0(4096, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, ede,
			&dns.EDNS0_PADDING{Padding: make([]byte, 100)},
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
			&dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Timeout: 100})
		return m
	}
	noOPT := func(q *dns.Msg) *dns.Msg { return answerA(q, 1) }
	twoOPTs := func(q *dns.Msg) *dns.Msg {
		m := upstream(q)
		m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 512}})
		return m
	}

	tests := []struct {
		name     string
		edns     bool
		do       bool
		answer   func(*dns.Msg) *dns.Msg
		wantOPT  bool
		wantEDE  bool
		wantOpts int // EDNS options left in the reply
	}{
		{name: "no EDNS: no OPT, so no EDE", answer: upstream},
		{name: "EDNS: padding, cookie and keepalive stripped, EDE kept", edns: true, answer: upstream, wantOPT: true, wantEDE: true, wantOpts: 1},
		{name: "EDNS with DO: DO echoed", edns: true, do: true, answer: upstream, wantOPT: true, wantEDE: true, wantOpts: 1},
		{name: "EDNS, resolver sent no OPT: one added", edns: true, answer: noOPT, wantOPT: true},
		{name: "EDNS, resolver sent two OPTs: one left", edns: true, answer: twoOPTs, wantOPT: true, wantEDE: true, wantOpts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, Options{Resolver: msgFunc(func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
				return tt.answer(q), nil
			})})
			for tr, c := range clients(t, s) {
				q := new(dns.Msg).SetQuestion("WwW.ExAmPlE.CoM.", dns.TypeA)
				q.Id = 0x4242
				if tt.edns {
					q.SetEdns0(4000, tt.do)
				}
				c.send(t, mustPack(t, q))
				m, _ := c.recv(t)
				if m.Id != 0x4242 || len(m.Question) != 1 || m.Question[0] != q.Question[0] {
					t.Errorf("%s: ID %#x question %v, want the client's %#x %v", tr, m.Id, m.Question, q.Id, q.Question[0])
				}
				var opts int
				for _, rr := range m.Extra {
					if _, ok := rr.(*dns.OPT); ok {
						opts++
					}
				}
				opt := m.IsEdns0()
				if opts != map[bool]int{false: 0, true: 1}[tt.wantOPT] {
					t.Fatalf("%s: %d OPT records, want OPT: %v", tr, opts, tt.wantOPT)
				}
				if opt == nil {
					continue
				}
				if opt.UDPSize() != defaultUDPSize || opt.Do() != tt.do || opt.Version() != 0 {
					t.Errorf("%s: OPT size %d DO %v version %d, want %d %v 0", tr, opt.UDPSize(), opt.Do(), opt.Version(), defaultUDPSize, tt.do)
				}
				if got := resolver.EDE(m); (got != nil) != tt.wantEDE || got != nil && *got != *ede {
					t.Errorf("%s: EDE %v, want %v: %v", tr, got, tt.wantEDE, ede)
				}
				if len(opt.Option) != tt.wantOpts {
					t.Errorf("%s: options %v, want %d", tr, opt.Option, tt.wantOpts)
				}
			}
		})
	}
}

func TestResolverErrorServFail(t *testing.T) {
	unreachable := &resolver.Error{Code: dns.ExtendedErrorCodeNoReachableAuthority, Text: "no upstream", Err: errors.New("dial tcp: refused")}
	tests := []struct {
		name    string
		err     error
		edns    bool
		wantEDE uint16 // 0: no EDE
	}{
		{name: "resolver.Error to EDNS client", err: unreachable, edns: true, wantEDE: dns.ExtendedErrorCodeNoReachableAuthority},
		{name: "wrapped resolver.Error", err: errors.Join(errors.New("upstream"), unreachable), edns: true, wantEDE: dns.ExtendedErrorCodeNoReachableAuthority},
		{name: "resolver.Error to plain client: no OPT", err: unreachable},
		{name: "plain error", err: errors.New("boom"), edns: true},
		{name: "nil response, nil error", edns: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, Options{Resolver: msgFunc(func(context.Context, *dns.Msg) (*dns.Msg, error) {
				return nil, tt.err
			})})
			for tr, c := range clients(t, s) {
				var size uint16
				if tt.edns {
					size = 1232
				}
				c.send(t, packQuery(t, 0x99, "example.com.", dns.TypeA, size))
				m, _ := c.recv(t)
				if m.Rcode != dns.RcodeServerFailure || m.Id != 0x99 {
					t.Fatalf("%s: rcode %s ID %#x, want SERVFAIL 0x99", tr, dns.RcodeToString[m.Rcode], m.Id)
				}
				if (m.IsEdns0() != nil) != tt.edns {
					t.Errorf("%s: OPT %v, want one: %v", tr, m.IsEdns0(), tt.edns)
				}
				ede := resolver.EDE(m)
				if tt.wantEDE == 0 && ede != nil || tt.wantEDE != 0 && (ede == nil || ede.InfoCode != tt.wantEDE) {
					t.Errorf("%s: EDE %v, want code %d", tr, ede, tt.wantEDE)
				}
			}
		})
	}
}

func TestPanicRecovered(t *testing.T) {
	s, rec := startServer(t, Options{Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		if q.Question[0].Name == "panic.example." {
			panic("resolver bug")
		}
		return echo(ctx, q)
	})})
	for tr, c := range clients(t, s) {
		t.Run(tr, func(t *testing.T) {
			c.send(t, packQuery(t, 1, "panic.example.", dns.TypeA, 0))
			if m, _ := c.recv(t); m.Rcode != dns.RcodeServerFailure || m.Id != 1 || len(m.Question) != 1 {
				t.Fatalf("after a panic got %v, want SERVFAIL with the question", m)
			}
			c.send(t, packQuery(t, 2, "ok.example.", dns.TypeA, 0))
			if m, _ := c.recv(t); m.Rcode != dns.RcodeSuccess || m.Id != 2 {
				t.Fatalf("after a panic the server answered %v", m)
			}
		})
	}
	logs := rec.Find("panic answering query")
	if len(logs) != 2 {
		t.Fatalf("%d panics logged, want 2", len(logs))
	}
	if l := logs[0]; l["level"].String() != "ERROR" || !strings.Contains(l["stack"].String(), "TestPanicRecovered") {
		t.Errorf("panic logged as %v, want ERROR with the stack", l)
	}
}
