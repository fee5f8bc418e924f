package main

import (
	"encoding/binary"
	"net/netip"
)

const (
	headerLen  = 12
	typeA      = 1
	typeOPT    = 41
	classIN    = 1
	answerLen  = 16 // pointer to the question name, type, class, TTL, length, IPv4
	optLen     = 11 // root name, type, UDP size, extended rcode and flags, length
	ednsUDP    = 1232
	flagQR     = 0x80
	flagRA     = 0x80
	doBitInTTL = 0x80 // high bit of the OPT TTL's third octet
)

// answerer builds fixed answers straight from the query's wire form, with
// no parsing beyond the question: the responder must cost as little CPU as
// possible, so that the process measured is the peer in front of it.
type answerer struct {
	ip  [4]byte
	ttl uint32
}

func newAnswerer(ip netip.Addr, ttl uint32) answerer {
	return answerer{ip: ip.As4(), ttl: ttl}
}

// appendAnswer appends to dst the answer to the query q: NOERROR with one
// A record for type A, NOERROR with no record (NODATA) for any other type,
// and an OPT record when the query had one. It returns dst unchanged when
// q is not a one-question query.
func (a answerer) appendAnswer(dst, q []byte) []byte {
	if len(q) < headerLen || q[2]&flagQR != 0 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return dst
	}
	end, ok := questionEnd(q)
	if !ok {
		return dst
	}
	qtype := binary.BigEndian.Uint16(q[end-4:])
	edns, do := readOPT(q, end)

	start := len(dst)
	dst = append(dst, q[:end]...)
	h := dst[start:]
	h[2] = flagQR | q[2]&0x79 // opcode and RD kept; AA, TC cleared
	h[3] = flagRA             // rcode NOERROR
	binary.BigEndian.PutUint16(h[6:], 0)
	binary.BigEndian.PutUint16(h[8:], 0)
	binary.BigEndian.PutUint16(h[10:], 0)
	if qtype == typeA {
		binary.BigEndian.PutUint16(h[6:], 1)
		dst = append(dst, 0xC0, headerLen, 0, typeA, 0, classIN)
		dst = binary.BigEndian.AppendUint32(dst, a.ttl)
		dst = append(dst, 0, 4, a.ip[0], a.ip[1], a.ip[2], a.ip[3])
	}
	if edns {
		binary.BigEndian.PutUint16(dst[start+10:], 1)
		var flags byte
		if do {
			flags = doBitInTTL
		}
		dst = append(dst, 0, 0, typeOPT, ednsUDP>>8, ednsUDP&0xFF, 0, 0, flags, 0, 0, 0)
	}
	return dst
}

// questionEnd returns the offset just past the first question. Queries
// carry no compression pointers in their question.
func questionEnd(q []byte) (int, bool) {
	off := headerLen
	for {
		if off >= len(q) {
			return 0, false
		}
		l := int(q[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 {
			return 0, false
		}
		off += 1 + l
	}
	off += 4
	return off, off <= len(q)
}

// readOPT reports whether the record right after the question is an OPT
// record, and its DO bit.
func readOPT(q []byte, off int) (edns, do bool) {
	if binary.BigEndian.Uint16(q[10:]) == 0 || off+optLen > len(q) || q[off] != 0 {
		return false, false
	}
	if binary.BigEndian.Uint16(q[off+1:]) != typeOPT {
		return false, false
	}
	return true, q[off+7]&doBitInTTL != 0
}
