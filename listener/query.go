package listener

import (
	"encoding/binary"
	"slices"

	"github.com/miekg/dns"
)

const (
	headerLen = 12   // a DNS message's fixed header
	flagQR    = 0x80 // the QR bit, in the header's third byte

	defaultUDPSize = 1232 // DNS Flag Day 2020: the EDNS UDP size we advertise
)

// query is a client's query that passed validation: the message for the
// resolver and what the reply to the client must echo. The echoed values
// are copies, kept apart from msg, which the resolver may see.
type query struct {
	msg      *dns.Msg
	id       uint16
	question dns.Question
	edns     bool   // the client sent an OPT record
	do       bool   // its DNSSEC OK bit
	udpSize  uint16 // its UDP payload size
}

// udpLimit is the largest UDP answer the client accepts: its EDNS UDP
// size, never below 512 (RFC 6891 §6.2.5); 512 without EDNS.
func (q *query) udpLimit() int {
	if q == nil || !q.edns {
		return dns.MinMsgSize
	}
	return min(max(int(q.udpSize), dns.MinMsgSize), maxUDPPayload)
}

// maxUDPPayload is the largest UDP payload over IPv4 (65,535 less the IP
// and UDP headers): a client's EDNS size of 65,535 cannot be taken at its
// word, or the send fails with EMSGSIZE and the client gets nothing.
const maxUDPPayload = 65507

// rawHeader reads what a reply needs from a query's header, which may be
// all that is readable of it.
func rawHeader(raw []byte) dns.MsgHdr {
	return dns.MsgHdr{
		Id:               binary.BigEndian.Uint16(raw[0:]),
		Opcode:           int(raw[2]>>3) & 0xF,
		RecursionDesired: raw[2]&0x01 != 0,
	}
}

// errorReply builds a reply with rcode to a query of which perhaps only
// the header could be read. It echoes the question when msg, the parsed
// query or nil, has exactly one.
func errorReply(raw []byte, msg *dns.Msg, rcode int) *dns.Msg {
	m := &dns.Msg{MsgHdr: rawHeader(raw)}
	m.Response = true
	m.Rcode = rcode
	if msg != nil && len(msg.Question) == 1 {
		m.Question = []dns.Question{msg.Question[0]}
	}
	return m
}

// validate applies the rules for a query we forward to one that unpacked
// without error. It returns the query, or the rcode to answer with
// instead when the query is malformed or unsupported.
func validate(raw []byte, msg *dns.Msg) (*query, int) {
	// miekg/dns trusts a QDCOUNT that runs past the end of the message
	// and stops early, so count from the header.
	if binary.BigEndian.Uint16(raw[4:]) != 1 || len(msg.Question) != 1 || !wholeQuestion(raw) {
		return nil, dns.RcodeFormatError
	}
	q := &query{msg: msg, id: msg.Id, question: msg.Question[0]}
	var opts int
	var version uint8
	for _, rr := range msg.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			opts++
			q.edns, q.do, q.udpSize, version = true, opt.Do(), opt.UDPSize(), opt.Version()
		}
	}
	if opts > 1 {
		return nil, dns.RcodeFormatError // RFC 6891 §6.1.1
	}
	if version > 0 {
		return q, dns.RcodeBadVers // RFC 6891 §6.1.3: we speak version 0
	}
	switch q.question.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		// Zone transfers are for secondaries of a zone we do not have.
		return q, dns.RcodeRefused
	}
	return q, dns.RcodeSuccess
}

// wholeQuestion reports whether the first question has its type and
// class: miekg/dns accepts a message that ends right after the name.
func wholeQuestion(raw []byte) bool {
	_, off, err := dns.UnpackDomainName(raw, headerLen)
	return err == nil && off+4 <= len(raw)
}

// shape makes a resolver's response m fit for the plain-DNS client that
// sent q: the client's ID and question (with its letter case), and an OPT
// record only if the client sent one. That OPT advertises our UDP size,
// echoes the client's DO bit (RFC 3225) and keeps the options meant for
// the client, such as an Extended DNS Error, but none that belong to the
// hop between us and the upstream.
func shape(m *dns.Msg, q *query) {
	m.Id = q.id
	m.Response = true
	m.Question = []dns.Question{q.question}

	var options []dns.EDNS0
	extra := make([]dns.RR, 0, len(m.Extra))
	for _, rr := range m.Extra {
		opt, ok := rr.(*dns.OPT)
		if !ok {
			extra = append(extra, rr)
			continue
		}
		for _, o := range opt.Option {
			if !hopByHop(o.Option()) {
				options = append(options, o)
			}
		}
	}
	m.Extra = extra
	if !q.edns {
		return
	}
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}, Option: options}
	opt.SetUDPSize(defaultUDPSize)
	opt.SetDo(q.do)
	m.Extra = append(m.Extra, opt)
}

// hopByHop reports whether an EDNS option concerns only the connection
// it came over, so that a response from upstream must not carry it on to
// the client: padding (RFC 7830, for encrypted transports only), TCP
// keepalive (RFC 7828) and cookies (RFC 7873, between the upstream and
// us).
func hopByHop(code uint16) bool {
	return slices.Contains([]uint16{dns.EDNS0PADDING, dns.EDNS0TCPKEEPALIVE, dns.EDNS0COOKIE}, code)
}
