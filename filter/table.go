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

// chunkBits sizes the chunks that hold a table's names: 1 MiB, so that
// a growing list never copies what it already holds, and a record's
// position fits in 32 bits (12 bits of chunk, 20 of offset).
const (
	chunkBits = 20
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// table is the immutable set of rules of one version of one list: an
// open-addressing hash table with linear probing over chunks of bytes
// that hold every name. It is built once and then only read, by any
// number of goroutines, so it needs no lock.
//
// Memory per name: its length plus 2 bytes in the chunks, 12 bytes of
// slots (8 bytes each, at most 2/3 full) and 1.25 bytes of Bloom filter:
// 36 bytes for a name of 20 characters.
type table struct {
	// chunks hold records: kind (1 byte), name length (1 byte), name
	// (lower case, no trailing dot). No record spans two chunks.
	chunks [][]byte
	// slots is 0 when empty; otherwise the name's hash tag (low 32
	// bits of its hash) in the high half and its record's position
	// (chunk<<chunkBits | offset), plus one, in the low half. The tag
	// lets a probe pass a slot without reading the name, a cache miss.
	slots []uint64
	// bloom answers "certainly not here" for most names that are not,
	// from 1.25 bytes per name, so that a query for a name on no list
	// (most queries) reads memory that stays in the CPU's cache instead
	// of a slot that does not.
	bloom bloom
	names int // distinct names
}

// lookup returns the kinds stored under name, whose hash is h, or 0.
func (t *table) lookup(name string, h uint64) kind {
	if t == nil || !t.bloom.has(h) {
		return 0
	}
	if rec, ok := find(t, name, h); ok {
		return kind(rec[0])
	}
	return 0
}

// find returns name's record. It takes a byte slice too so that build
// can look up the names in the chunks without copying them.
func find[S string | []byte](t *table, name S, h uint64) ([]byte, bool) {
	n := uint64(len(t.slots))
	if n == 0 {
		return nil, false
	}
	i, _ := bits.Mul64(h, n) // the high bits of h pick the slot, the low ones are the tag
	tag := uint32(h)
	for {
		s := t.slots[i]
		if s == 0 {
			return nil, false
		}
		if uint32(s>>32) == tag {
			rec := t.record(uint32(s) - 1)
			if string(rec[2:]) == string(name) {
				return rec, true
			}
		}
		if i++; i == n {
			i = 0
		}
	}
}

// record returns the record at pos: kind, length, name.
func (t *table) record(pos uint32) []byte {
	c := t.chunks[pos>>chunkBits]
	off := pos & chunkMask
	return c[off : off+2+uint32(c[off+1])]
}

// tableBuilder collects the rules of a list being parsed.
type tableBuilder struct {
	chunks  [][]byte
	records int
}

// add records rule k for name, which checkName accepted, in lower case.
func (b *tableBuilder) add(name []byte, k kind) {
	last := len(b.chunks) - 1
	if last < 0 || len(b.chunks[last])+2+len(name) > chunkSize {
		var c []byte // the first chunk grows by append: a short list stays small
		if last >= 0 {
			c = make([]byte, 0, chunkSize)
		}
		b.chunks = append(b.chunks, c)
		last++
	}
	c := append(b.chunks[last], byte(k), byte(len(name)))
	start := len(c)
	c = append(c, name...)
	for i := start; i < len(c); i++ {
		if 'A' <= c[i] && c[i] <= 'Z' {
			c[i] += 'a' - 'A'
		}
	}
	b.chunks[last] = c
	b.records++
}

// build returns the table of the rules added so far. A name added more
// than once gets the union of its kinds; its later records stay in the
// chunks, unreferenced.
func (b *tableBuilder) build() *table {
	t := &table{chunks: b.chunks}
	b.chunks = nil
	if b.records == 0 {
		return t
	}
	for i, c := range t.chunks {
		if cap(c)-len(c) > len(c)/8 {
			// append left slack: give it back, the table is kept for a day.
			t.chunks[i] = append(make([]byte, 0, len(c)), c...)
		}
	}
	t.slots = make([]uint64, b.records+b.records/2+1)
	t.bloom = make(bloom, (b.records*bloomBitsPerName+bloomBlockBits-1)/bloomBlockBits)
	for ci, c := range t.chunks {
		for off := 0; off < len(c); off += 2 + int(c[off+1]) {
			name := c[off+2 : off+2+int(c[off+1])]
			h := hashBytes(name)
			if rec, ok := find(t, name, h); ok {
				rec[0] |= c[off]
				continue
			}
			t.insert(uint32(ci<<chunkBits|off), h)
			t.bloom.add(h)
			t.names++
		}
	}
	return t
}

func (t *table) insert(pos uint32, h uint64) {
	n := uint64(len(t.slots))
	i, _ := bits.Mul64(h, n)
	for t.slots[i] != 0 {
		if i++; i == n {
			i = 0
		}
	}
	t.slots[i] = uint64(uint32(h))<<32 | uint64(pos+1)
}

// bytes is the memory the table holds.
func (t *table) bytes() int {
	n := 8*len(t.slots) + 32*len(t.bloom)
	for _, c := range t.chunks {
		n += cap(c)
	}
	return n
}
