package cache

import (
	"encoding/binary"
	"sync"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/wire"
)

// An entry's blob is the one allocation an ordinary entry keeps on the
// heap: a byte slice, which the garbage collector marks but never scans,
// so that a full cache costs each mark phase next to nothing. It is
// never written once stored: an entry with a new answer gets a new blob,
// and hits read the old one after the shard's lock is released.
//
//	nameLen   uint16       the key's name, folded to lower case, in presentation form
//	name      [nameLen]
//
// and, when the entry holds a packed answer:
//
//	ttl       uint32       seconds the answer is fresh
//	question  uint16       offset in wire just past the question
//	wireLen   uint16
//	wire      [wireLen]    the packed answer (see answer.wire)
//	ttlAt     [2×records]  offsets in wire of the records' TTLs
//	options   [...]        the EDNS options: the answer's EDEs
//
// The answer's flags and rcode are those of wire's header, its record
// counts wire's section counts: nothing is kept twice.
const (
	blobNameAt = 2 // nameLen's size
	blobMeta   = 8 // ttl, question, wireLen
)

// packBuffers hold the messages packBlob packs: dns.Msg sizes its
// buffer for the message uncompressed, so the blob takes a copy of the
// packed length instead, and the buffer serves the next miss.
var packBuffers = sync.Pool{New: func() any { b := make([]byte, packBufferSize); return &b }}

// packBufferSize holds most answers; a larger one gets a buffer of its
// own, which the pool then keeps up to maxPackBuffer.
const (
	packBufferSize = 2048
	maxPackBuffer  = 16 << 10
)

// nameBlob returns the blob of an entry with no packed answer: its name
// only.
func nameBlob(name string) []byte {
	b := make([]byte, 0, blobNameAt+len(name))
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	return append(b, name...)
}

// blobName returns the folded name a blob holds.
func blobName(b []byte) []byte {
	n := int(binary.BigEndian.Uint16(b))
	return b[blobNameAt : blobNameAt+n]
}

// blobAnswer returns the offset of b's packed answer, b's length when
// it holds none.
func blobAnswer(b []byte) int { return blobNameAt + int(binary.BigEndian.Uint16(b)) }

// packBlob returns the blob of an answer a to the question k (name
// folded): a's records rrs packed, with its TTL, and the offsets of the
// records' TTLs; or nil when they cannot be packed, and the store keeps
// them as dns.RRs.
func packBlob(k *key, a *answer, rrs *rrForm) []byte {
	m := dns.Msg{
		MsgHdr: dns.MsgHdr{Response: true, Rcode: int(a.rcode),
			Authoritative: a.aa, RecursionAvailable: a.ra, AuthenticatedData: a.ad},
		Compress: true,
	}
	m.Question = []dns.Question{{Name: k.name, Qtype: k.qtype, Qclass: k.qclass}}
	m.Answer, m.Ns, m.Extra = rrs.answer, rrs.ns, rrs.extra
	buf := packBuffers.Get().(*[]byte)
	defer packBuffers.Put(buf)
	w, err := m.PackBuffer(*buf)
	if cap(w) > cap(*buf) && cap(w) <= maxPackBuffer {
		*buf = w[:cap(w)]
	}
	if err != nil || len(w)+optLen+len(a.options) > dns.MaxMsgSize || len(k.name) > 0xFFFF {
		return nil
	}
	question, err := wire.SkipName(w, wire.HeaderLen)
	if err != nil {
		return nil
	}
	question += 4
	records := a.records()
	b := make([]byte, 0, blobNameAt+len(k.name)+blobMeta+len(w)+2*records+len(a.options))
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.name)))
	b = append(b, k.name...)
	b = binary.BigEndian.AppendUint32(b, a.ttl)
	b = binary.BigEndian.AppendUint16(b, uint16(question))
	b = binary.BigEndian.AppendUint16(b, uint16(len(w)))
	b = append(b, w...)
	off := question
	for range records {
		r, err := wire.NextRecord(w, off)
		if err != nil {
			return nil
		}
		b = binary.BigEndian.AppendUint16(b, uint16(r.TTLAt))
		off = r.End
	}
	if off != len(w) {
		return nil
	}
	return append(b, a.options...)
}

// viewBlob returns the packed answer b holds, its slices into b: b must
// hold one.
func viewBlob(b []byte) answer {
	p := blobAnswer(b)
	a := answer{ttl: binary.BigEndian.Uint32(b[p:]), question: int(binary.BigEndian.Uint16(b[p+4:]))}
	n := int(binary.BigEndian.Uint16(b[p+6:]))
	p += blobMeta
	w := b[p : p+n : p+n]
	a.wire = w
	a.rcode = uint16(w[3] & 0xF)
	a.aa, a.ra, a.ad = w[2]&0x04 != 0, w[3]&0x80 != 0, w[3]&0x20 != 0
	for i := range a.counts {
		a.counts[i] = binary.BigEndian.Uint16(w[6+2*i:])
	}
	p += n
	t := p + 2*a.records()
	a.ttlAt = b[p:t:t]
	a.options = b[t:len(b):len(b)]
	return a
}

// blobTTL returns the TTL of the packed answer b holds.
func blobTTL(b []byte) uint32 { return binary.BigEndian.Uint32(b[blobAnswer(b):]) }
