package listener

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/wire"
	"github.com/dotproxy/dotproxy/resolver"
)

// answerPacked offers the query raw from client over tr to the resolver's
// fast path (resolver.Fast: a cache hit) and returns dst with the answer
// appended, and true; or dst and false when the query must take the
// usual path: the resolver is not fast or declined, the query is not a
// plain one, the client is not allowed (the usual path refuses it), or
// Debug logs are on (the usual path logs every step). It runs in the
// goroutine that read raw, so it never blocks.
//
// scratch is the calling reader's own, reused from one query to the next
// so that the query and its Info, which the resolver sees by pointer,
// cost no allocation.
func (s *Server) answerPacked(sc *scratch, dst, raw []byte, client netip.AddrPort, tr transport) (out []byte, ok bool) {
	live := s.live.Load()
	if live.fast == nil || !live.allow.allows(client.Addr()) || s.debug() {
		return dst, false
	}
	var start time.Time
	if s.opts.Observer != nil {
		start = time.Now()
	}
	q := &sc.q
	*q = resolver.Packed{}
	if !parsePacked(raw, q) {
		return dst, false
	}
	q.Client = client.Addr()
	if tr == transportTCP {
		q.Limit = dns.MaxMsgSize
	}
	defer func() {
		// A panic here is the usual path's to report, if it recurs.
		if r := recover(); r != nil {
			s.log.Warn("panic in the fast path, answering the usual way", "client", client,
				"err", fmt.Sprint(r), "stack", string(debug.Stack()))
			out, ok = dst, false
		}
	}()
	info := &sc.info
	*info = resolver.Info{}
	out, ok = live.fast.ResolvePacked(dst, q, info)
	if !ok {
		return dst, false
	}
	if s.opts.Observer != nil {
		s.opts.Observer.ObserveQuery(QueryEvent{
			Time:      start,
			Client:    client,
			Transport: string(tr),
			Name:      q.Name,
			Qtype:     q.Qtype,
			Rcode:     int(out[len(dst)+3] & 0xF),
			Size:      len(out) - len(dst),
			Duration:  time.Since(start),
			Info:      *info,
		})
	}
	return out, true
}

// scratch is what one reader lends the fast path for each query.
type scratch struct {
	q    resolver.Packed
	info resolver.Info
}

// parsePacked reads raw into q when it is a plain query the fast path
// may answer: opcode QUERY with no other header flag but RD, AD and CD,
// one question whose name has no compression pointer, of a type other
// than a zone transfer or OPT, nothing in the answer and authority
// sections, and at most an OPT record of version 0 after it, ending the
// message. It sets q.Limit for UDP. Anything else is the usual path's:
// it reports false.
func parsePacked(raw []byte, q *resolver.Packed) bool {
	if len(raw) < wire.HeaderLen+5 || raw[2]&^0x01 != 0 || raw[3]&^0x30 != 0 {
		return false
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(raw[4:]), binary.BigEndian.Uint16(raw[6:]),
		binary.BigEndian.Uint16(raw[8:]), binary.BigEndian.Uint16(raw[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return false
	}
	off := wire.HeaderLen
	for off < len(raw) && raw[off] != 0 {
		if raw[off]&0xC0 != 0 {
			return false
		}
		off += 1 + int(raw[off])
	}
	if off+5 > len(raw) || off+1-wire.HeaderLen > 255 {
		return false
	}
	off++
	q.Qtype, q.Qclass = binary.BigEndian.Uint16(raw[off:]), binary.BigEndian.Uint16(raw[off+2:])
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT:
		return false
	}
	q.QuestionEnd = off + 4
	q.Limit = dns.MinMsgSize
	if ar == 1 && !parseOPT(raw[q.QuestionEnd:], q) || ar == 0 && q.QuestionEnd != len(raw) {
		return false
	}
	name, _, err := dns.UnpackDomainName(raw, wire.HeaderLen)
	if err != nil {
		return false
	}
	q.Wire, q.Name = raw, name
	q.RD, q.AD, q.CD = raw[2]&0x01 != 0, raw[3]&0x20 != 0, raw[3]&0x10 != 0
	return true
}

// parseOPT reads the OPT record that must be all of rest, the message
// after the question: root name, type OPT, version 0, its options
// exactly filling its RDATA, each one well formed.
func parseOPT(rest []byte, q *resolver.Packed) bool {
	if len(rest) < 11 || rest[0] != 0 || binary.BigEndian.Uint16(rest[1:]) != dns.TypeOPT ||
		rest[6] != 0 || int(binary.BigEndian.Uint16(rest[9:]))+11 != len(rest) {
		return false
	}
	if len(rest) > 11 {
		// Options: only what unpacks as the usual path unpacks it (a
		// cookie of a wrong length does not), at the cost of unpacking
		// this one record.
		if _, _, err := dns.UnpackRR(rest, 0); err != nil {
			return false
		}
	}
	q.EDNS, q.DO = true, rest[7]&0x80 != 0
	q.Limit = min(max(int(binary.BigEndian.Uint16(rest[3:])), dns.MinMsgSize), maxUDPPayload)
	return true
}
