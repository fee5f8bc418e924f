package cache

import (
	"hash/maphash"
	"sync"
	"time"
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
// own lock, map, LRU list and share of the bounds.
type store struct {
	seed   maphash.Seed
	shards []shard
	mask   uint64
}

// shard is one lock's worth of the store. Everything in it is guarded by
// mu.
type shard struct {
	mu      sync.Mutex
	entries map[uint64]*entry
	lru     entry // sentinel of the LRU ring: lru.next is the most recent
	flights map[uint64]*flight

	maxEntries, maxBytes int
	bytes                int
	hits, misses, evicts uint64

	_ [64]byte // keeps neighbouring shards' locks off one cache line
}

// entry is what the store knows about one key: an answer (fresh or
// expired), a failure remembered for a while, or both.
type entry struct {
	key  key // name folded
	hash uint64

	data    *answer   // nil when only a failure is known
	stored  time.Time // when data came
	expires time.Time // stored + data.ttl
	hits    int       // since data came, for prefetch

	fail *failed // nil, or a failure to answer with until fail.until

	size       int
	prev, next *entry
}

// failed is a failure remembered for a key: an upstream's SERVFAIL
// (answer) or the error of the resolver it wraps (err).
type failed struct {
	answer *answer
	err    error
	until  time.Time
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
		sh.entries = make(map[uint64]*entry)
		sh.flights = make(map[uint64]*flight)
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
		sh.maxEntries = (size + n - 1) / n
		sh.maxBytes = (maxBytes + n - 1) / n
	}
	return s
}

// shard returns the shard of hash h. The low bits choose the shard; the
// map inside uses the whole hash.
func (s *store) shard(h uint64) *shard { return &s.shards[h&s.mask] }

// find returns the entry for k under hash h, or nil. A different key
// under the same hash (a collision) is not k's entry. Caller holds mu.
func (sh *shard) find(k *key, h uint64) *entry {
	e := sh.entries[h]
	if e == nil || !e.key.matches(k) {
		return nil
	}
	return e
}

// touch makes e the most recently used. Caller holds mu.
func (sh *shard) touch(e *entry) {
	if sh.lru.next == e {
		return
	}
	sh.unlink(e)
	sh.pushFront(e)
}

func (sh *shard) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (sh *shard) pushFront(e *entry) {
	e.prev, e.next = &sh.lru, sh.lru.next
	sh.lru.next.prev = e
	sh.lru.next = e
}

// remove deletes e. Caller holds mu.
func (sh *shard) remove(e *entry) {
	sh.unlink(e)
	delete(sh.entries, e.hash)
	sh.bytes -= e.size
}

// entryFor returns k's entry, made new and most recent when there is
// none (replacing another key's under the same hash). Caller holds mu.
func (sh *shard) entryFor(k *key, h uint64) *entry {
	if e := sh.find(k, h); e != nil {
		sh.touch(e)
		return e
	}
	if old := sh.entries[h]; old != nil {
		sh.remove(old)
	}
	e := &entry{key: k.folded(), hash: h}
	sh.entries[h] = e
	sh.pushFront(e)
	return e
}

// resize records e's new size and evicts from the least recently used
// end until the shard is within its bounds again; e itself, the most
// recent, is evicted only when it alone exceeds the byte bound. Caller
// holds mu.
func (sh *shard) resize(e *entry) {
	size := keyCost(len(e.key.name))
	if e.data != nil {
		size = e.data.size
	}
	if f := e.fail; f != nil {
		size += failedCost
		if f.answer != nil {
			size += f.answer.size
		} else {
			size += errCost
		}
	}
	sh.bytes += size - e.size
	e.size = size
	for len(sh.entries) > sh.maxEntries || sh.bytes > sh.maxBytes {
		last := sh.lru.prev
		if last == &sh.lru {
			return
		}
		sh.remove(last)
		sh.evicts++
	}
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
		st.Entries += len(sh.entries)
		st.Bytes += sh.bytes
		sh.mu.Unlock()
	}
	return st
}
