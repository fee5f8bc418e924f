// Package wire reads the few parts of packed DNS messages that the fast
// paths need without unpacking them: names to skip, records to walk.
package wire

import (
	"encoding/binary"
	"errors"
)

// HeaderLen is a DNS message's fixed header.
const HeaderLen = 12

var (
	errPointer = errors.New("wire: bad label type")
	errShort   = errors.New("wire: message ends inside a name or record")
)

// SkipName returns the offset just past the domain name at off in m: its
// labels up to the root, or up to a compression pointer.
func SkipName(m []byte, off int) (int, error) {
	for off < len(m) {
		switch c := m[off]; {
		case c == 0:
			return off + 1, nil
		case c&0xC0 == 0xC0:
			if off+2 > len(m) {
				return 0, errShort
			}
			return off + 2, nil
		case c&0xC0 != 0:
			return 0, errPointer
		default:
			off += 1 + int(c)
		}
	}
	return 0, errShort
}

// Record is where one resource record sits in a message.
type Record struct {
	Type  uint16
	TTLAt int // offset of its TTL
	Data  int // offset of its RDATA
	End   int // offset just past it
}

// NextRecord reads the record at off in m.
func NextRecord(m []byte, off int) (Record, error) {
	off, err := SkipName(m, off)
	if err != nil {
		return Record{}, err
	}
	if off+10 > len(m) {
		return Record{}, errShort
	}
	r := Record{Type: binary.BigEndian.Uint16(m[off:]), TTLAt: off + 4, Data: off + 10}
	r.End = r.Data + int(binary.BigEndian.Uint16(m[off+8:]))
	if r.End > len(m) {
		return Record{}, errShort
	}
	return r, nil
}
