package cache

import (
	"hash/maphash"
	"sync"
)

const (
	// maxShards bounds the lock shards: more buys nothing on a router's
	// few cores.
	maxShards = 64
	// minPerShard keeps each shard big enough that eviction by least
	// recent use within a shard stays close to eviction over the whole
	// cache; a cache of fewer entries is one shard, exactly LRU.
	minPerShard = 256
	// minShardBytes does the same for the byte bound: room for a few
	// hundred typical answers per shard.
	minShardBytes = 256 << 10
)

// store holds the entries, split into shards by key hash, each with its
// own lock, index, LRU list and share of the bounds.
type store struct {
	seed   maphash.Seed
	shards []shard
	mask   uint64
}

// shard is one lock's worth of the store. Everything in it is guarded by
// mu.
//
// An entry is a slot, found by its hash in index, and a blob (blob.go)
// in the parallel blobs: neither a slot nor the index holds a pointer,
// and a blob is bytes, so the garbage collector marks a full cache
// without walking it. What needs pointers (an answer that would not
// pack, a remembered failure) is in rare, keyed by slot, for the few
// entries that have it.
type shard struct {
	mu      sync.Mutex
	index   map[uint64]int32 // hash → slot
	slots   []slot           // slots[0] is the sentinel of the LRU ring: its next is the most recent
	blobs   [][]byte         // each slot's blob; nil for a free slot
	free    int32            // first free slot, linked by next; 0: none
	rare    map[int32]*rare
	flights map[uint64]*flight

	maxEntries, maxBytes int
	bytes                int
	hits, misses, evicts uint64

	_ [64]byte // keeps neighbouring shards' locks off one cache line
}

// slot is what the store knows about one key, beside its blob. It holds
// no pointer (TestSlotHasNoPointers): times are nanoseconds on the
// cache's monotonic scale (Cache.mono), links are slot numbers.
type slot struct {
	hash    uint64
	stored  int64 // when the answer came
	expires int64 // stored + its TTL
	// prev and next link the LRU ring, or (next) the free list.
	prev, next    int32
	hits          uint32 // since the answer came, for prefetch
	size          int32  // memory the entry takes, for the byte bound (memsize.go)
	qtype, qclass uint16
	flags         uint8
}

// A slot's flags.
const (
	slotDO     = 1 << iota // the key's DO bit
	slotCD                 // the key's CD bit
	slotPacked             // an answer, packed in the blob
	slotRare               // an answer, as dns.RRs in rare.data
	slotFail               // a failure remembered, in rare.fail

	slotAnswer = slotPacked | slotRare
)

// keyFlags returns the flags of k's slot that are part of the key.
func keyFlags(k *key) uint8 {
	var f uint8
	if k.do {
		f |= slotDO
	}
	if k.cd {
		f |= slotCD
	}
	return f
}

// rare is what an entry holds that needs pointers.
type rare struct {
	data *answer // an answer that did not pack (slotRare)
	fail *failed // a failure remembered (slotFail)
}

// failed is a failure remembered for a key: an upstream's SERVFAIL
// (answer) or the error of the resolver it wraps (err).
type failed struct {
	answer *answer
	err    error
	until  int64 // on the cache's monotonic scale
}

// heapShare is the share of the byte bound the entries' heap may take,
// in tenths. A byte of live heap costs more than a byte of memory: with
// Go's default GOGC=100 the heap grows to twice what is live before the
// collector runs, and eviction leaves holes between live entries that
// are reused, not returned. Counting each live byte as two and a half
// keeps the memory the process gains for a full cache within MaxBytes
// (BenchmarkMaxMemoryRSS; figures in bench/README.md).
const heapShare = 4

// heapBound is the most heap entries may take under a byte bound of
// maxBytes (see heapShare).
func heapBound(maxBytes int) int { return max(1, maxBytes/10*heapShare) }

// newStore returns a store bounded by size entries and maxBytes of
// memory, heap and collector room (see heapShare).
func newStore(size, maxBytes int) *store {
	maxBytes = heapBound(maxBytes)
	n := 1
	for n < maxShards && n*2*minPerShard <= size && n*2*minShardBytes <= maxBytes {
		n *= 2
	}
	s := &store{seed: maphash.MakeSeed(), shards: make([]shard, n), mask: uint64(n - 1)}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.index = make(map[uint64]int32)
		sh.rare = make(map[int32]*rare)
		sh.flights = make(map[uint64]*flight)
		sh.slots = make([]slot, 1, slotsGrowth)
		sh.blobs = make([][]byte, 1, slotsGrowth)
		sh.maxEntries = (size + n - 1) / n
		sh.maxBytes = (maxBytes + n - 1) / n
	}
	return s
}

// shard returns the shard of hash h. The low bits choose the shard; the
// map inside uses the whole hash.
func (s *store) shard(h uint64) *shard { return &s.shards[h&s.mask] }

// find returns the slot of k under hash h, or 0. A different key under
// the same hash (a collision) is not k's entry. Caller holds mu.
func (sh *shard) find(k *key, h uint64) int32 {
	if i, ok := sh.index[h]; ok && sh.holds(i, k) {
		return i
	}
	return 0
}

// holds reports whether slot i is k's entry. Caller holds mu.
func (sh *shard) holds(i int32, k *key) bool {
	s := &sh.slots[i]
	return s.qtype == k.qtype && s.qclass == k.qclass && s.flags&(slotDO|slotCD) == keyFlags(k) &&
		equalFold(blobName(sh.blobs[i]), k.name)
}

// entryFor returns k's slot, made new and most recent when there is
// none (replacing another key's under the same hash) with blob, or a
// blob of k's name when blob is nil. Caller holds mu.
func (sh *shard) entryFor(k *key, h uint64, blob []byte) int32 {
	if old, ok := sh.index[h]; ok {
		if sh.holds(old, k) {
			sh.touch(old)
			return old
		}
		sh.remove(old)
	}
	if blob == nil {
		blob = nameBlob(k.name)
	}
	i := sh.alloc()
	sh.slots[i] = slot{hash: h, qtype: k.qtype, qclass: k.qclass, flags: keyFlags(k)}
	sh.blobs[i] = blob
	sh.index[h] = i
	sh.pushFront(i)
	return i
}

// remove deletes the entry in slot i. Caller holds mu.
func (sh *shard) remove(i int32) {
	s := &sh.slots[i]
	sh.unlink(i)
	delete(sh.index, s.hash)
	if s.flags&(slotRare|slotFail) != 0 {
		delete(sh.rare, i)
	}
	sh.bytes -= int(s.size)
	*s = slot{next: sh.free}
	sh.blobs[i] = nil
	sh.free = i
}

// stats adds up every shard's counters.
func (s *store) stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Hits += sh.hits
		st.Misses += sh.misses
		st.Evictions += sh.evicts
		st.Entries += len(sh.index)
		st.Bytes += sh.bytes
		sh.mu.Unlock()
	}
	return st
}

// equalFold reports whether the stored, folded name s is name, compared
// without regard to ASCII case.
func equalFold[S string | []byte](s S, name string) bool {
	if len(s) != len(name) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != lower(name[i]) {
			return false
		}
	}
	return true
}
