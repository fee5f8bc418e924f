package listener

import (
	"encoding/binary"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/wire"
	"github.com/dotproxy/dotproxy/resolver"
)

// parsePacked reads raw into q when it is a plain query, the common
// kind, without unpacking it: opcode QUERY with no other header flag but
// RD, AD and CD, one question whose name has no compression pointer, of a
// type other than a zone transfer or OPT, nothing in the answer and
// authority sections, and at most an OPT record of version 0 after it,
// ending the message. It sets q.Limit for UDP. Anything else is unpacked
// and validated: it reports false.
func parsePacked(raw []byte, q *resolver.Request) bool {
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
	q.Name = name
	q.ID = binary.BigEndian.Uint16(raw)
	q.RD, q.AD, q.CD = raw[2]&0x01 != 0, raw[3]&0x20 != 0, raw[3]&0x10 != 0
	return true
}

// parseOPT reads the OPT record that must be all of rest, the message
// after the question: root name, type OPT, version 0, its options
// exactly filling its RDATA, each one well formed.
func parseOPT(rest []byte, q *resolver.Request) bool {
	if len(rest) < 11 || rest[0] != 0 || binary.BigEndian.Uint16(rest[1:]) != dns.TypeOPT ||
		rest[6] != 0 || int(binary.BigEndian.Uint16(rest[9:]))+11 != len(rest) {
		return false
	}
	if len(rest) > 11 {
		// Options: only what unpacks as dns.Msg unpacks it (a cookie of
		// a wrong length does not), at the cost of unpacking this one
		// record.
		if _, _, err := dns.UnpackRR(rest, 0); err != nil {
			return false
		}
	}
	q.EDNS, q.DO = true, rest[7]&0x80 != 0
	q.Limit = min(max(int(binary.BigEndian.Uint16(rest[3:])), dns.MinMsgSize), maxUDPPayload)
	return true
}
