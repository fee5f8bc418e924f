package resolver

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// Transport is how a query reached dotproxy.
type Transport uint8

// The transports a Request may come over.
const (
	// Internal: a query dotproxy makes itself (a cache refresh, a list
	// download's address lookup).
	Internal Transport = iota
	UDP
	TCP
)

// String returns "udp", "tcp" or "internal", as logs and the query log
// write it.
func (t Transport) String() string {
	switch t {
	case UDP:
		return "udp"
	case TCP:
		return "tcp"
	}
	return "internal"
}

// MarshalText makes a Transport log and marshal as its name.
func (t Transport) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Request is one query on its way through the chain. The listener parses
// a client's query into one once, normalising what every layer reads
// (the question, the flags, the client's address), and each layer reads
// those fields rather than parse anything again. NewRequest makes one for
// a query dotproxy asks itself.
//
// A Request is used by one goroutine at a time. Layers never change its
// query fields; they record what they did in Info.
type Request struct {
	// Wire is the query as the client sent it, validated; nil for a
	// Request from NewRequest. It may be the listener's buffer: read it
	// during Resolve, never keep it.
	Wire []byte
	// QuestionEnd is the offset in Wire just past the question when that
	// question is written without compression, so that an answer in
	// wire form can copy it (and with it the client's letter case); 0
	// otherwise.
	QuestionEnd int

	// ID is the query's ID.
	ID uint16
	// Name is the question's name in presentation form, in the client's
	// letter case; Qtype and Qclass are its type and class.
	Name          string
	Qtype, Qclass uint16
	// RD, AD and CD are the query's header flags.
	RD, AD, CD bool
	// EDNS says the query has an OPT record; DO is its DNSSEC OK bit.
	EDNS, DO bool
	// Signed says the query carries a TSIG record: its answer is for this
	// client alone.
	Signed bool

	// Limit is the largest answer the client accepts, in octets: its UDP
	// size over UDP, 65535 over TCP.
	Limit int
	// Client is the address the query came from: an IPv4 address mapped
	// into IPv6 is unmapped, an IPv6 zone dropped, so that it matches
	// configured prefixes. Invalid for a query of dotproxy's own.
	Client netip.Addr
	// Transport is how the query came.
	Transport Transport

	// Coalesced says identical requests in flight together were joined
	// into this one already (the cache's own upstream query is): a layer
	// further on need not join them again.
	Coalesced bool

	// Inline is set while the listener resolves the request in the
	// goroutine that reads the client's socket, where nothing may wait:
	// a layer that would wait returns ErrWouldWait instead.
	Inline bool
	// Buf is scratch space a layer that answers in wire form may append
	// its answer to, so that a hit allocates nothing; nil: allocate.
	Buf []byte

	// Info is what the layers did with the query, for the metrics and
	// the query log.
	Info Info

	msg *dns.Msg // the query as a message, unpacked on demand
}

// NewRequest returns a Request for q, a query with exactly one question
// that dotproxy makes itself. q is shared with the layers, which must not
// change it.
func NewRequest(q *dns.Msg) *Request {
	req := &Request{
		ID:     q.Id,
		RD:     q.RecursionDesired,
		AD:     q.AuthenticatedData,
		CD:     q.CheckingDisabled,
		Signed: q.IsTsig() != nil,
		Limit:  dns.MaxMsgSize,
		msg:    q,
	}
	if len(q.Question) > 0 {
		qs := q.Question[0]
		req.Name, req.Qtype, req.Qclass = qs.Name, qs.Qtype, qs.Qclass
	}
	if opt := q.IsEdns0(); opt != nil {
		req.EDNS, req.DO = true, opt.Do()
	}
	return req
}

// SetMsg records m as the Request's message, already unpacked from Wire
// by whoever parsed it, so that Msg does not unpack it again.
func (r *Request) SetMsg(m *dns.Msg) { r.msg = m }

// Msg returns the query as a message, unpacking Wire the first time.
// The message is shared: read it, never change it.
func (r *Request) Msg() *dns.Msg {
	if r.msg != nil {
		return r.msg
	}
	m := new(dns.Msg)
	if r.Wire == nil || m.Unpack(r.Wire) != nil {
		// The listener validated Wire; this is for a Request built by
		// hand. The fields are the query.
		m = &dns.Msg{MsgHdr: dns.MsgHdr{Id: r.ID, Opcode: dns.OpcodeQuery,
			RecursionDesired: r.RD, AuthenticatedData: r.AD, CheckingDisabled: r.CD}}
		m.Question = []dns.Question{r.Question()}
		if r.EDNS {
			m.SetEdns0(dns.MinMsgSize, r.DO)
		}
	}
	r.msg = m
	return m
}

// Question returns the query's question.
func (r *Request) Question() dns.Question {
	return dns.Question{Name: r.Name, Qtype: r.Qtype, Qclass: r.Qclass}
}

// Reply returns a new response to the query with rcode, as
// dns.Msg.SetRcode makes one: its ID, opcode, RD and CD, and its
// question as the client wrote it.
func (r *Request) Reply(rcode int) *dns.Msg {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Id: r.ID, Response: true, Opcode: dns.OpcodeQuery,
		RecursionDesired: r.RD, CheckingDisabled: r.CD, Rcode: rcode}}
	m.Question = []dns.Question{r.Question()}
	return m
}

// Response is a layer's answer to a Request: a message, or the finished
// answer in wire form. Exactly one of the two is set.
type Response struct {
	// Msg is the answer as a message, with the query's ID and question;
	// the listener shapes it for the client (EDNS, truncation) and packs
	// it.
	Msg *dns.Msg
	// Wire is the answer as the client gets it: the query's ID and
	// question, an OPT record shaped for the client when it sent one,
	// within the request's Limit. The listener sends it as it is. It may
	// share memory with the Request's Buf.
	Wire []byte
}

// Rcode returns the answer's response code (its header's four bits for
// a wire answer).
func (r Response) Rcode() int {
	if r.Msg != nil {
		return r.Msg.Rcode
	}
	if len(r.Wire) < 4 {
		return -1
	}
	return int(r.Wire[3] & 0xF)
}

// Unpack returns the answer as a message: Msg, or Wire unpacked.
func (r Response) Unpack() (*dns.Msg, error) {
	if r.Msg != nil || r.Wire == nil {
		return r.Msg, nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(r.Wire); err != nil {
		return nil, err
	}
	return m, nil
}

// ResolveMsg asks r for q as a query of dotproxy's own (NewRequest) and
// returns the answer as a message, whatever form r gave it in.
func ResolveMsg(ctx context.Context, r Resolver, q *dns.Msg) (*dns.Msg, error) {
	resp, err := r.Resolve(ctx, NewRequest(q))
	if err != nil {
		return nil, err
	}
	return resp.Unpack()
}
