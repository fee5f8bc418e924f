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

// A packer is what packBlob packs a message with: a buffer and a
// compression table, both kept for the next miss. dns.Msg's Pack makes a
// table of its own for every message.
type packer struct {
	buf   []byte
	names map[string]int // name → offset, for compression
	ttlAt []byte         // the records' TTL offsets, two octets each
}

var packers = sync.Pool{New: func() any {
	return &packer{buf: make([]byte, packBufferSize), names: make(map[string]int)}
}}

// packBufferSize holds most answers; a larger one grows the buffer, which
// the pool then keeps up to maxPackBuffer.
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
// them as dns.RRs. dns.PackRR sets each record's Rdlength as it packs,
// which dns.Msg.Pack does not: rrs must be records no other goroutine
// reads, as the cache's own fresh answer is.
func packBlob(k *key, a *answer, rrs *rrForm) []byte {
	if len(k.name) > 0xFFFF {
		return nil
	}
	p := packers.Get().(*packer)
	defer p.release()
	var w []byte
	var question int
	for {
		var err error
		if w, question, err = p.pack(k, a, rrs); err == nil {
			break
		}
		// dns.ErrBuf or an "overflow" of one record's data: most likely
		// the buffer, which grows up to the largest message there is.
		if len(p.buf) >= dns.MaxMsgSize {
			return nil
		}
		p.buf = make([]byte, min(2*len(p.buf), dns.MaxMsgSize))
	}
	if len(w)+optLen+len(a.options) > dns.MaxMsgSize {
		return nil
	}
	ttlAt := p.ttlAt
	b := make([]byte, 0, blobNameAt+len(k.name)+blobMeta+len(w)+len(ttlAt)+len(a.options))
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.name)))
	b = append(b, k.name...)
	b = binary.BigEndian.AppendUint32(b, a.ttl)
	b = binary.BigEndian.AppendUint16(b, uint16(question))
	b = binary.BigEndian.AppendUint16(b, uint16(len(w)))
	b = append(b, w...)
	b = append(b, ttlAt...)
	return append(b, a.options...)
}

// pack writes into p.buf the message a blob keeps: a header with a's
// flags, rcode and counts (ID 0), the question k, and a's records rrs,
// names compressed as dns.Msg compresses them; and into p.ttlAt the
// offset of each record's TTL. It returns the message and the offset
// just past its question, or an error when p.buf is too small (or a
// record does not pack).
func (p *packer) pack(k *key, a *answer, rrs *rrForm) (w []byte, question int, err error) {
	buf := p.buf
	clear(p.names)
	p.ttlAt = p.ttlAt[:0]
	flags := uint16(1<<15) | a.rcode&0xF // QR, opcode QUERY
	if a.aa {
		flags |= 1 << 10
	}
	if a.ra {
		flags |= 1 << 7
	}
	if a.ad {
		flags |= 1 << 5
	}
	if len(buf) < wire.HeaderLen {
		return nil, 0, dns.ErrBuf
	}
	binary.BigEndian.PutUint16(buf, 0)
	binary.BigEndian.PutUint16(buf[2:], flags)
	binary.BigEndian.PutUint16(buf[4:], 1)
	for i, n := range a.counts {
		binary.BigEndian.PutUint16(buf[6+2*i:], n)
	}
	off, err := dns.PackDomainName(k.name, buf, wire.HeaderLen, p.names, true)
	if err != nil {
		return nil, 0, err
	}
	if off+4 > len(buf) {
		return nil, 0, dns.ErrBuf
	}
	binary.BigEndian.PutUint16(buf[off:], k.qtype)
	binary.BigEndian.PutUint16(buf[off+2:], k.qclass)
	off += 4
	question = off
	for _, section := range [...][]dns.RR{rrs.answer, rrs.ns, rrs.extra} {
		for _, rr := range section {
			start := off
			if off, err = dns.PackRR(rr, buf, off, p.names, true); err != nil {
				return nil, 0, err
			}
			at, err := wire.SkipName(buf[:off], start)
			if err != nil {
				return nil, 0, err
			}
			p.ttlAt = binary.BigEndian.AppendUint16(p.ttlAt, uint16(at+4))
		}
	}
	return buf[:off], question, nil
}

// release gives p back to the pool, unless a large answer grew its
// buffer past what is worth keeping.
func (p *packer) release() {
	clear(p.names)
	if len(p.buf) > maxPackBuffer {
		return
	}
	packers.Put(p)
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
