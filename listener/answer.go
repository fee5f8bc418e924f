package listener

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

var (
	errNoResponse = errors.New("resolver returned no response and no error")
	errTooLarge   = errors.New("answer larger than the client accepts")
	errPanicked   = errors.New("the resolver panicked")
)

// scratch is what one reader (a UDP read loop, a TCP connection's
// reader) reuses from one query to the next, so that a query answered
// at once allocates nothing of its own.
type scratch struct {
	q   query
	buf []byte // the Request's Buf: where a wire answer is made
}

// answerNow is the first step of every query, in the goroutine that read
// raw from client over tr, where nothing may wait. It parses raw into
// sc.q and resolves it Inline: the answers the chain has at once (cache
// hits, blocked and local names, malformed queries) are appended to dst,
// and returned with wait false. When the answer needs a wait, it returns
// dst and wait true, and sc.q holds the parsed query for detach to hand
// to a worker. A query that gets no answer at all leaves dst as it is,
// wait false.
func (s *Server) answerNow(sc *scratch, dst, raw []byte, client netip.AddrPort, tr resolver.Transport) (out []byte, wait bool) {
	live := s.live.Load()
	q := &sc.q
	if !s.parse(q, live, raw, client, tr) {
		s.logDropped(raw, client, tr)
		return dst, false
	}
	s.logReceived(q)
	if q.reject != nil || q.rcode != dns.RcodeSuccess {
		return s.finish(dst, q, resolver.Response{}, nil), false
	}
	q.req.Inline, q.req.Buf = true, sc.buf[:0]
	resp, err := s.resolve(s.ctx, live, q)
	if err == resolver.ErrWouldWait {
		return dst, true
	}
	if resp.Wire != nil && cap(resp.Wire) <= maxSpare {
		sc.buf = resp.Wire[:0] // grown: keep it for the next answer
	}
	return s.finish(dst, q, resp, err), false
}

// detach returns a copy of q, the query answerNow left waiting, that
// owns its wire form, for a worker: the reader reuses q and raw. The
// copy has room for a query of the usual size, so that it and its wire
// form are one allocation; a longer one's append allocates its own.
func detach(q *query) *query {
	d := new(detached)
	d.query = *q
	d.req.Wire = append(d.wire[:0], q.req.Wire...)
	d.req.Inline, d.req.Buf, d.req.Info = false, nil, resolver.Info{}
	return &d.query
}

// detachedWire is the room a detached query has for its wire form: more
// than a question with an EDNS record and a cookie takes.
const detachedWire = 128

// detached is a query with room for its wire form.
type detached struct {
	query
	wire [detachedWire]byte
}

// answerWaiting resolves the detached query q, in a worker, within the
// query timeout counted from q's arrival (see deadlines: parse's clock
// reading serves, not another), and returns its answer's wire form: nil
// when Shutdown has answered q in the meantime.
func (s *Server) answerWaiting(q *query) []byte {
	live := s.live.Load()
	ctx := live.deadlines.context(s.ctx, q.start)
	resp, err := s.resolve(ctx, live, q)
	if err == resolver.ErrWouldWait {
		err = fmt.Errorf("%w, though not inline", err) // a layer broke the contract
	}
	if !s.settle(q) {
		return nil
	}
	return s.finish(nil, q, resp, err)
}

// resolve asks the resolver chain for q's answer. A panic in the chain
// becomes an error, so that the client gets SERVFAIL and the goroutine
// (perhaps a socket's reader) goes on.
func (s *Server) resolve(ctx context.Context, live *settings, q *query) (resp resolver.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic answering query", "client", q.client, "transport", q.req.Transport,
				"err", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = resolver.Response{}, errPanicked
		}
	}()
	return live.resolver.Resolve(ctx, &q.req)
}

// finish turns what became of q (a resolver's response or error, or the
// rejection parse decided on) into the answer's wire form, appended to
// dst; logs it and tells the observer. A message is shaped for the
// client and packed within its limit, truncated if need be; a wire answer
// is the client's already.
func (s *Server) finish(dst []byte, q *query, resp resolver.Response, err error) []byte {
	req := &q.req
	limit := req.Limit
	switch {
	case q.reject != nil:
		resp = resolver.Response{Msg: q.reject}
		limit = dns.MinMsgSize
		if req.Transport == resolver.TCP {
			limit = dns.MaxMsgSize
		}
	case q.rcode != dns.RcodeSuccess:
		resp = resolver.Response{Msg: req.Reply(q.rcode)}
	case err == nil && resp.Msg == nil && resp.Wire == nil:
		err = errNoResponse
	}
	if err != nil {
		s.log.Debug("resolving failed", "qname", req.Name, "qtype", dns.Type(req.Qtype).String(), "err", err)
		resp = resolver.Response{Msg: resolver.ServFail(req, err)}
	}
	start := len(dst)
	var rcode int
	var truncated bool
	if resp.Wire != nil {
		if dst == nil && !req.Inline {
			dst = resp.Wire // a worker's own answer: no copy (inline ones may share the reader's Buf)
		} else {
			dst = append(dst, resp.Wire...)
		}
		rcode, truncated = resp.Rcode(), resp.Wire[2]&0x02 != 0
	} else {
		m := resp.Msg
		if q.reject == nil {
			shape(m, req)
		}
		wire, err := pack(m, limit)
		if err != nil {
			s.log.Warn("packing answer failed, sending SERVFAIL", "client", q.client, "err", err)
			m = errorReply(req.Wire, q.question(nil), dns.RcodeServerFailure)
			if wire, err = pack(m, limit); err != nil {
				return dst
			}
		}
		dst = append(dst, wire...)
		rcode, truncated = m.Rcode, m.Truncated
	}
	size := len(dst) - start
	s.logAnswered(q, rcode, size, truncated)
	if s.opts.Observer != nil {
		s.observe(q, rcode, size, truncated)
	}
	return dst
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
func (s *Server) recoverPanic(client netip.AddrPort, tr resolver.Transport) {
	if r := recover(); r != nil {
		s.log.Error("panic serving query", "client", client, "transport", tr,
			"err", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}
