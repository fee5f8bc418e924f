package resolver

import "net/netip"

// Packed is a client's query as it came off the wire, read but not
// unpacked into a dns.Msg, with what the listener read from it. Only a
// plain query takes this form: opcode QUERY, one question, no answer or
// authority records, at most an OPT record (version 0) in the additional
// section.
type Packed struct {
	// Wire is the whole query as the client sent it. It is the
	// listener's buffer: read it, never keep or change it.
	Wire []byte
	// QuestionEnd is the offset in Wire just past the question.
	QuestionEnd int
	// Name is the question's name in presentation form, in the client's
	// letter case.
	Name          string
	Qtype, Qclass uint16
	// RD, AD and CD are the query's header flags.
	RD, AD, CD bool
	// EDNS says the query has an OPT record; DO is its DNSSEC OK bit.
	EDNS, DO bool
	// Limit is the largest answer the client accepts, in octets: its
	// UDP size over UDP, 65535 over TCP.
	Limit int
	// Client is the address the query came from.
	Client netip.Addr
	// Check, when set, must allow an answer before it is given and
	// counted: a layer in front that has to see the answer's records
	// (the filter, for the CNAME chain) sets it, and the layer that has
	// the answer (the cache) declines when it says no, so that nothing
	// is counted for an answer the front layer would refuse.
	Check AnswerCheck
}

// AnswerCheck judges an answer in wire form (its records as they will be
// given; its ID and question may not be the client's yet).
type AnswerCheck interface {
	Allows(answer []byte) bool
}

// ID returns the query's ID.
func (q *Packed) ID() uint16 { return uint16(q.Wire[0])<<8 | uint16(q.Wire[1]) }

// Fast is implemented by a Resolver that can answer some queries in
// their packed form, at once and from memory: a cache hit. The listener
// offers every plain query to ResolvePacked first and takes the usual
// path (unpack, context, Resolve, pack) only when it declines, which
// saves a hit nearly all of its cost.
//
// A middleware implements Fast only if it can apply every rule it
// applies in Resolve, or decline: the filter, say, declines a name its
// lists decide and checks the CNAME targets of the answer it passes on.
type Fast interface {
	// ResolvePacked appends the whole answer to q, in wire form, to dst
	// and returns the result and true. It must not block, and must
	// decline (return dst and false) whatever it cannot answer exactly
	// as Resolve would, fitting in q.Limit, or that q.Check does not
	// allow; a declined query must leave no trace, because it is then
	// resolved again by Resolve. It records in info what Resolve would
	// record in the context's Info.
	ResolvePacked(dst []byte, q *Packed, info *Info) ([]byte, bool)
}
