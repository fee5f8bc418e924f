package listener

import (
	"encoding/binary"
	"net/netip"

	"github.com/dotproxy/dotproxy/ratelimit"
)

// limitUDP asks the rate limiter about wire, an answer about to go to
// client over UDP, packed and truncated already. It returns what to send:
// wire itself, its slip form appended to slipDst, or nil for nothing.
// wire is not modified: a worker's answer may share its memory with the
// cache.
func (s *Server) limitUDP(live *settings, slipDst, wire []byte, client netip.AddrPort) []byte {
	if live.limiter == nil {
		return wire
	}
	switch live.limiter.Check(client.Addr()) {
	case ratelimit.Allow:
		return wire
	case ratelimit.Slip:
		s.rateSlipped.Add(1)
		return appendSlip(slipDst, wire)
	}
	s.rateDropped.Add(1)
	return nil
}

// RateLimited returns how many UDP answers the rate limiter dropped and
// how many it sent truncated instead, since New: the counts live in the
// Server, so that a reload that brings a new limiter does not reset them.
func (s *Server) RateLimited() (dropped, slipped uint64) {
	return s.rateDropped.Load(), s.rateSlipped.Load()
}

// ShareDropped returns how many UDP queries were dropped because their
// client held its whole share of the queries in flight.
func (s *Server) ShareDropped() uint64 { return s.shareDropped.Load() }

// appendSlip appends to dst the slip form of ans, an answer: its ID,
// opcode and RD, QR and TC set, RCODE 0, its question and nothing more,
// no OPT either. Like BIND's, it is no larger than the query, so it
// amplifies nothing, and it tells a real client to retry over TCP.
func appendSlip(dst, ans []byte) []byte {
	if len(ans) < headerLen {
		return dst
	}
	end, qd := headerLen, uint16(0)
	if binary.BigEndian.Uint16(ans[4:]) == 1 {
		if qend, ok := questionEnd(ans); ok {
			end, qd = qend, 1
		}
	}
	start := len(dst)
	dst = append(dst, ans[:end]...)
	h := dst[start:]
	h[2] = h[2]&0x79 | flagQR | flagTC // keep opcode and RD
	h[3] = 0                           // RA, AD, CD off; RCODE 0
	binary.BigEndian.PutUint16(h[4:], qd)
	clear(h[6:headerLen]) // no records
	return dst
}

// flagTC is the TC bit, in the header's third byte.
const flagTC = 0x02

// questionEnd returns where the first question of msg ends, when its
// name is uncompressed, as the first name of a message always is.
func questionEnd(msg []byte) (int, bool) {
	off := headerLen
	for off < len(msg) && msg[off] != 0 {
		if msg[off]&0xC0 != 0 {
			return 0, false
		}
		off += 1 + int(msg[off])
	}
	off += 1 + 4 // the root label, type and class
	return off, off <= len(msg)
}
