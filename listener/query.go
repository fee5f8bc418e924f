package listener

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

const (
	headerLen = 12   // a DNS message's fixed header
	flagQR    = 0x80 // the QR bit, in the header's third byte

	defaultUDPSize = 1232 // DNS Flag Day 2020: the EDNS UDP size we advertise
)

// maxUDPPayload is the largest UDP payload over IPv4 (65,535 less the IP
// and UDP headers): a client's EDNS size of 65,535 cannot be taken at its
// word, or the send fails with EMSGSIZE and the client gets nothing.
const maxUDPPayload = 65507

// query is one client query in the listener: the Request the resolver
// chain reads, parsed once, and what the answer needs beyond it.
type query struct {
	req    resolver.Request
	client netip.AddrPort
	start  time.Time
	// reject, when set, is the answer to send as it is, without
	// resolving: the client is not allowed, or the query is malformed
	// or of another opcode.
	reject *dns.Msg
	// rcode, when not RcodeSuccess, is the rcode to answer a query that
	// parsed but is unsupported (BADVERS, a zone transfer) with, without
	// resolving it.
	rcode int
}

// parse reads raw, a query from client over tr, into q, which it resets
// first. It reports false when raw gets no answer at all: too short to
// have an ID, or a response (answering a response could start a loop
// with whoever sent it). Otherwise q holds the Request to resolve, or
// q.reject or q.rcode the answer to give instead.
//
// A plain query (parsePacked) is read without unpacking; anything else
// is unpacked and checked by validate, and the Request keeps the
// message.
func (s *Server) parse(q *query, live *settings, raw []byte, client netip.AddrPort, tr resolver.Transport) bool {
	*q = query{client: client}
	if len(raw) < headerLen || raw[2]&flagQR != 0 {
		return false
	}
	q.start = time.Now()
	req := &q.req
	var msg *dns.Msg
	var unpackErr error
	plain := parsePacked(raw, req)
	if !plain {
		*req = resolver.Request{} // what parsePacked read before it gave up
		msg = new(dns.Msg)
		if unpackErr = msg.Unpack(raw); unpackErr != nil {
			msg = nil
		}
	}
	req.Wire, req.Transport = raw, tr
	req.Client = client.Addr().Unmap().WithZone("")
	switch {
	case !live.allow.allows(req.Client):
		q.reject = errorReply(raw, q.question(msg), dns.RcodeRefused)
	case rawHeader(raw).Opcode != dns.OpcodeQuery:
		// Before unpacking matters: another opcode's message need not
		// follow a query's format.
		q.reject = errorReply(raw, q.question(msg), dns.RcodeNotImplemented)
	case unpackErr != nil:
		q.reject = errorReply(raw, nil, dns.RcodeFormatError)
	case !plain:
		if q.rcode = validate(raw, msg, req); q.rcode != dns.RcodeSuccess && req.Name == "" {
			// Malformed: no Request to shape an answer for.
			q.reject = errorReply(raw, q.question(msg), q.rcode)
		}
	}
	if tr == resolver.TCP {
		req.Limit = dns.MaxMsgSize
	} else {
		// Whatever the client advertises: set here, before resolving,
		// so that an answer copied whole from the cache honours it too.
		req.Limit = min(req.Limit, live.maxUDPSize)
	}
	return true
}

// question returns the query's question for an error reply: the one
// parsed, or msg's when it has exactly one; nil when there is none.
func (q *query) question(msg *dns.Msg) *dns.Question {
	switch {
	case q.req.Name != "":
		qs := q.req.Question()
		return &qs
	case msg != nil && len(msg.Question) == 1:
		return &msg.Question[0]
	}
	return nil
}

// echoed returns the name and type of the question q's answer echoes;
// an empty name when it has none (a query too malformed to read one
// from).
func (q *query) echoed() (name string, qtype uint16) {
	if q.reject != nil {
		if len(q.reject.Question) == 0 {
			return "", 0
		}
		return q.reject.Question[0].Name, q.reject.Question[0].Qtype
	}
	return q.req.Name, q.req.Qtype
}

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
// the header could be read, echoing question when there is one.
func errorReply(raw []byte, question *dns.Question, rcode int) *dns.Msg {
	m := &dns.Msg{MsgHdr: rawHeader(raw)}
	m.Response = true
	m.Rcode = rcode
	if question != nil {
		m.Question = []dns.Question{*question}
	}
	return m
}

// validate applies the rules for a query we forward to raw, a query that
// is not plain and that unpacked into msg without error, and fills req
// from msg. It returns RcodeSuccess, or the rcode to answer with instead
// when the query is malformed or unsupported; req is filled enough to
// answer with BADVERS or REFUSED, and left without a name for FORMERR.
func validate(raw []byte, msg *dns.Msg, req *resolver.Request) int {
	// miekg/dns trusts a QDCOUNT that runs past the end of the message
	// and stops early, so count from the header.
	if binary.BigEndian.Uint16(raw[4:]) != 1 || len(msg.Question) != 1 || !wholeQuestion(raw) {
		return dns.RcodeFormatError
	}
	// An OPT record belongs in the additional section, once, owned by
	// the root (RFC 6891 §6.1.1); one anywhere else makes the query
	// malformed, not plain.
	if slices.ContainsFunc(msg.Answer, isOPT) || slices.ContainsFunc(msg.Ns, isOPT) {
		return dns.RcodeFormatError
	}
	var opts int
	var version uint8
	var udpSize uint16
	for _, rr := range msg.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			opts++
			req.EDNS, req.DO, udpSize, version = true, opt.Do(), opt.UDPSize(), opt.Version()
			if opt.Hdr.Name != "." {
				opts++
			}
		}
	}
	if opts > 1 {
		req.EDNS, req.DO = false, false
		return dns.RcodeFormatError
	}
	qs := msg.Question[0]
	req.ID, req.Name, req.Qtype, req.Qclass = msg.Id, qs.Name, qs.Qtype, qs.Qclass
	req.RD, req.AD, req.CD = msg.RecursionDesired, msg.AuthenticatedData, msg.CheckingDisabled
	req.Signed = msg.IsTsig() != nil
	req.Limit = dns.MinMsgSize
	if req.EDNS {
		req.Limit = min(max(int(udpSize), dns.MinMsgSize), maxUDPPayload)
	}
	req.SetMsg(msg)
	if version > 0 {
		return dns.RcodeBadVers // RFC 6891 §6.1.3: we speak version 0
	}
	switch qs.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		// Zone transfers are for secondaries of a zone we do not have.
		return dns.RcodeRefused
	}
	return dns.RcodeSuccess
}

func isOPT(rr dns.RR) bool {
	_, ok := rr.(*dns.OPT)
	return ok
}

// wholeQuestion reports whether the first question has its type and
// class: miekg/dns accepts a message that ends right after the name.
func wholeQuestion(raw []byte) bool {
	_, off, err := dns.UnpackDomainName(raw, headerLen)
	return err == nil && off+4 <= len(raw)
}

// shape makes a resolver's response m fit for the plain-DNS client that
// sent req: the client's ID and question (with its letter case), and an
// OPT record only if the client sent one. That OPT advertises our UDP
// size, echoes the client's DO bit (RFC 3225) and keeps the options
// meant for the client, such as an Extended DNS Error, but none that
// belong to the hop between us and the upstream.
func shape(m *dns.Msg, req *resolver.Request) {
	m.Id = req.ID
	m.Response = true
	m.Question = []dns.Question{req.Question()}

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
	if !req.EDNS {
		return
	}
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}, Option: options}
	opt.SetUDPSize(defaultUDPSize)
	opt.SetDo(req.DO)
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
