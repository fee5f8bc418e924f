package filter

import (
	"hash/maphash"
	"math/bits"
)

// kind says what a rule does to the name it is stored under. One name
// holds the union of the kinds its list gives it.
type kind uint8

const (
	blockTree  kind = 1 << iota // the name and every name under it: example.com, ||example.com^
	blockExact                  // the name only: |example.com^
	blockBelow                  // the names under it, not itself: *.example.com
	allowTree                   // the allow (exception) forms of the three above
	allowExact
	allowBelow
)

const (
	blockKinds = blockTree | blockExact | blockBelow
	allowKinds = allowTree | allowExact | allowBelow
	treeKinds  = blockTree | allowTree
	exactKinds = blockExact | allowExact
	belowKinds = blockBelow | allowBelow

	// allowShift turns a block kind into its allow kind.
	allowShift = 3
)

// seed is the hash seed of every table in the process: one query name's
// hash is computed once and looked up in every list's table.
var seed = maphash.MakeSeed()

func hashName(name string) uint64 { return maphash.String(seed, name) }

// hashBytes is hashName for a name in a byte slice: the same bytes hash
// the same.
func hashBytes(name []byte) uint64 { return maphash.Bytes(seed, name) }

// table is the immutable set of rules of one version of one list: an
// open-addressing hash table with linear probing over a single byte slice
// that holds every name. It is built once and then only read, by any
// number of goroutines, so it needs no lock.
//
// Memory: each name costs its length plus 2 bytes in data, and 8 bytes
// per slot at a load of at most 2/3, so about 12 bytes of slots. A list
// of 1M names of 20 characters takes about 34 MB.
type table struct {
	// data is a sequence of records: kind (1 byte), name length
	// (1 byte), name (lower-case, no trailing dot).
	data []byte
	// slots is 0 when empty; otherwise the name's hash tag (low 32
	// bits of its hash) in the high half and the offset of its record
	// in data, plus one, in the low half. The tag lets a probe skip a
	// slot without reading data, which is the cache miss.
	slots []uint64
	names int // distinct names
}

// lookup returns the kinds stored under name, whose hash is h, or 0.
func (t *table) lookup(name string, h uint64) kind {
	if t == nil {
		return 0
	}
	if off, ok := find(t, name, h); ok {
		return kind(t.data[off])
	}
	return 0
}

// find returns the offset of name's record. It takes a byte slice too so
// that build can look up the names in data without copying them.
func find[S string | []byte](t *table, name S, h uint64) (int, bool) {
	n := uint64(len(t.slots))
	if n == 0 {
		return 0, false
	}
	i, _ := bits.Mul64(h, n) // the high bits of h pick the slot, the low ones are the tag
	tag := uint32(h)
	for {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if uint32(s>>32) == tag {
			off := int(uint32(s)) - 1
			l := int(t.data[off+1])
			if string(t.data[off+2:off+2+l]) == string(name) {
				return off, true
			}
		}
		if i++; i == n {
			i = 0
		}
	}
}

// tableBuilder collects the rules of a list being parsed.
type tableBuilder struct {
	data    []byte
	records int
}

// add records rule k for name, which is already normalized (lower case,
// no trailing dot, at most 253 bytes).
func (b *tableBuilder) add(name string, k kind) {
	b.data = append(b.data, byte(k), byte(len(name)))
	b.data = append(b.data, name...)
	b.records++
}

// build returns the table of the rules added so far. A name added more
// than once gets the union of its kinds; its later records stay in data,
// unreferenced.
func (b *tableBuilder) build() *table {
	t := &table{}
	if b.records == 0 {
		return t
	}
	t.data = b.data
	if cap(t.data)-len(t.data) > len(t.data)/8 {
		// append doubled it: give the slack back, the table is kept for a day.
		t.data = append(make([]byte, 0, len(t.data)), t.data...)
	}
	b.data = nil
	t.slots = make([]uint64, b.records+b.records/2+1)
	for off := 0; off < len(t.data); {
		k := t.data[off]
		l := int(t.data[off+1])
		name := t.data[off+2 : off+2+l]
		h := hashBytes(name)
		if prev, ok := find(t, name, h); ok {
			t.data[prev] |= k
		} else {
			t.insert(off, h)
			t.names++
		}
		off += 2 + l
	}
	return t
}

func (t *table) insert(off int, h uint64) {
	n := uint64(len(t.slots))
	i, _ := bits.Mul64(h, n)
	for t.slots[i] != 0 {
		if i++; i == n {
			i = 0
		}
	}
	t.slots[i] = uint64(uint32(h))<<32 | uint64(off+1)
}
