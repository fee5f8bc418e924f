package listener

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// transport names the transport a query came over, for logs.
type transport string

const (
	transportUDP transport = "udp"
	transportTCP transport = "tcp"
)

var (
	errNoResponse = errors.New("resolver returned no response and no error")
	errTooLarge   = errors.New("answer larger than the client accepts")
)

// answer handles one query, raw as client sent it over tr, and returns
// the answer's wire form, or nil when the query gets no answer. It is the
// one path every query takes, whatever its transport.
func (s *Server) answer(raw []byte, client netip.AddrPort, tr transport) (wire []byte) {
	if len(raw) < headerLen || raw[2]&flagQR != 0 {
		// Too short to have an ID, or a response: answering a response
		// could start a loop with whoever sent it.
		s.logDropped(raw, client, tr)
		return nil
	}
	start := time.Now()
	msg := new(dns.Msg)
	unpackErr := msg.Unpack(raw)
	if unpackErr != nil {
		msg = nil
	}
	limit := dns.MaxMsgSize
	if tr == transportUDP {
		limit = dns.MinMsgSize
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic answering query", "client", client, "transport", tr,
				"err", fmt.Sprint(r), "stack", string(debug.Stack()))
			m := errorReply(raw, msg, dns.RcodeServerFailure)
			if wire, _ = pack(m, limit); wire != nil && s.opts.Observer != nil {
				s.observe(m, len(wire), client, tr, start, resolver.Info{})
			}
		}
	}()
	s.logReceived(raw, msg, client, tr)

	m, q, info := s.reply(raw, msg, unpackErr, client)
	if q != nil && tr == transportUDP {
		limit = q.udpLimit()
	}
	wire, err := pack(m, limit)
	if err != nil {
		s.log.Warn("packing answer failed, sending SERVFAIL", "client", client, "err", err)
		m = errorReply(raw, msg, dns.RcodeServerFailure)
		if wire, err = pack(m, limit); err != nil {
			return nil
		}
	}
	s.logAnswered(m, len(wire), client, tr, start)
	if s.opts.Observer != nil {
		s.observe(m, len(wire), client, tr, start, info)
	}
	return wire
}

// reply returns the response to the query raw (parsed into msg unless
// unpackErr), the validated query when there is one, and what the
// resolver chain recorded about it.
func (s *Server) reply(raw []byte, msg *dns.Msg, unpackErr error, client netip.AddrPort) (*dns.Msg, *query, resolver.Info) {
	if !s.live.Load().allow.allows(client.Addr()) {
		return errorReply(raw, msg, dns.RcodeRefused), nil, resolver.Info{}
	}
	// Before unpacking matters: another opcode's message need not
	// follow a query's format.
	if rawHeader(raw).Opcode != dns.OpcodeQuery {
		return errorReply(raw, msg, dns.RcodeNotImplemented), nil, resolver.Info{}
	}
	if unpackErr != nil {
		return errorReply(raw, nil, dns.RcodeFormatError), nil, resolver.Info{}
	}
	q, rcode := validate(raw, msg)
	if q == nil {
		return errorReply(raw, msg, rcode), nil, resolver.Info{}
	}
	var m *dns.Msg
	var info resolver.Info
	if rcode != dns.RcodeSuccess {
		m = new(dns.Msg).SetRcode(msg, rcode)
	} else {
		m, info = s.resolve(q, client)
	}
	shape(m, q)
	return m, q, info
}

// resolve asks the resolver, with the query's own deadline and the
// client's address in the context, and turns a failure into SERVFAIL with
// the Extended DNS Error the error carries. With an observer, the context
// also carries a resolver.Info for the chain to fill in, returned with
// the answer.
func (s *Server) resolve(q *query, client netip.AddrPort) (*dns.Msg, resolver.Info) {
	live := s.live.Load()
	ctx, cancel := context.WithTimeout(s.ctx, live.queryTimeout)
	defer cancel()
	ctx = resolver.WithClient(ctx, client.Addr())
	var info *resolver.Info
	if s.opts.Observer != nil {
		ctx, info = resolver.WithInfo(ctx)
	}
	m, err := live.resolver.Resolve(ctx, q.msg)
	if err == nil && m == nil {
		err = errNoResponse
	}
	if err != nil {
		s.log.Debug("resolving failed", "qname", q.question.Name,
			"qtype", dns.Type(q.question.Qtype).String(), "err", err)
		m = resolver.ServFail(q.msg, err)
	}
	if info == nil {
		return m, resolver.Info{}
	}
	// Every write to info happened before Resolve returned (see
	// resolver.Info): this copy is the whole record.
	return m, *info
}

// pack packs m into at most limit bytes, dropping whole records and
// setting TC when it does not fit, so that the client can still parse it
// and knows to retry over TCP.
func pack(m *dns.Msg, limit int) ([]byte, error) {
	m.Compress = true
	wire, err := m.Pack()
	if err == nil && len(wire) <= limit {
		return wire, nil // the common case: packed once, never measured
	}
	m.Truncate(limit)
	wire, err = m.Pack()
	if err == nil && len(wire) > limit {
		err = errTooLarge
	}
	return wire, err
}

// recoverPanic, deferred by a goroutine serving one query, keeps a panic
// in it (writing the answer, say) from taking the process down.
func (s *Server) recoverPanic(client netip.AddrPort, tr transport) {
	if r := recover(); r != nil {
		s.log.Error("panic serving query", "client", client, "transport", tr,
			"err", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}
