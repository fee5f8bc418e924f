package cache

import "time"

const (
	// prefetchMinHits is how often an entry must have been hit since it
	// was stored to count as popular enough to prefetch.
	prefetchMinHits = 3
	// prefetchWindow: an entry is prefetched by a hit in the last
	// 1/prefetchWindow of its TTL (Unbound's 10%).
	prefetchWindow = 10
	// prefetchMinTTL is the shortest TTL worth prefetching: below it
	// the window is shorter than a round trip upstream.
	prefetchMinTTL = 10 * time.Second
)

// outcome is what a lookup found for a key.
type outcome int

const (
	miss    outcome = iota // nothing fresh: ask upstream (serving stale if it fails)
	hit                    // a fresh answer
	failing                // a failure remembered: answer with it, or stale
)

// result is a lookup's finding. Its answers are what the store holds,
// which is never changed: they are read (viewed) after the shard's lock
// is released.
type result struct {
	outcome outcome
	fresh   stored  // hit: the answer
	age     uint32  // hit: seconds since it was stored
	stale   stored  // miss or failing, when ok: an expired answer that may be served stale
	fail    *failed // failing: the failure
	refresh *flight // hit: a prefetch the caller must start
}

// mono returns t on the cache's monotonic scale, the one slots keep
// times on: nanoseconds since the cache was made, by its clock. With
// time.Now both carry a monotonic reading, so a wall clock set at boot
// moves nothing.
func (c *Cache) mono(t time.Time) int64 { return int64(t.Sub(c.epoch)) }

// lookup finds what the cache holds for k (hash h) at time now. For an
// inline lookup, which may not wait on an upstream, it reports false when
// the outcome is a miss, and then changes nothing: not the LRU order, not
// the counters, not an expired entry, so that the lookup that follows in
// a goroutine that may wait does it all once.
func (c *Cache) lookup(k *key, h uint64, now time.Time, inline bool) (result, bool) {
	t := c.mono(now)
	sh := c.store.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.find(k, h)
	if i == 0 {
		if inline {
			return result{}, false
		}
		sh.misses++
		return result{}, true
	}
	s := &sh.slots[i]
	if s.flags&slotAnswer != 0 && t < s.expires {
		sh.touch(i)
		return c.hit(sh, i, t), true
	}
	fail := sh.failure(i)
	remembered := fail != nil && t < fail.until
	if inline && !remembered {
		return result{}, false
	}
	sh.touch(i)
	var r result
	if s.flags&slotAnswer != 0 {
		if c.opts.ServeStale && t-s.expires < int64(c.opts.StaleMaxAge) {
			r.stale = sh.storedOf(i)
		} else {
			sh.dropAnswer(i)
			sh.resize(i)
		}
	}
	if remembered {
		r.outcome, r.fail = failing, fail
		if !r.stale.ok() {
			sh.hits++
		}
		return r, true
	}
	sh.misses++
	if s.flags&slotAnswer == 0 {
		sh.remove(i)
	} else if fail != nil {
		sh.setFailure(i, nil)
		sh.resize(i)
	}
	return r, true
}

// hit counts a hit on slot i, fresh at t, and returns it, with the
// prefetch to start when it is due. Caller holds sh.mu.
func (c *Cache) hit(sh *shard, i int32, t int64) result {
	sh.hits++
	s := &sh.slots[i]
	s.hits = max(s.hits, s.hits+1) // stays at its top rather than wrap
	r := result{outcome: hit, fresh: sh.storedOf(i), age: uint32(max(t-s.stored, 0) / int64(time.Second))}
	if c.opts.Prefetch && prefetchDue(s, t) {
		r.refresh = sh.startRefresh(i, &c.bg)
	}
	return r
}

// prefetchDue reports whether the fresh entry s, just hit, is popular and
// close enough to expiry at t to be refreshed now.
func prefetchDue(s *slot, t int64) bool {
	ttl := s.expires - s.stored
	return s.hits >= prefetchMinHits && ttl >= int64(prefetchMinTTL) && s.expires-t <= ttl/prefetchWindow
}

// startRefresh registers a background refresh of slot i and returns it,
// or returns nil when one is already in flight for its key or the bound
// on background refreshes is reached. Caller holds mu.
func (sh *shard) startRefresh(i int32, bg *background) *flight {
	s := &sh.slots[i]
	if sh.flights[s.hash] != nil {
		return nil
	}
	select {
	case bg.slots <- struct{}{}:
	default:
		return nil
	}
	k := key{name: string(blobName(sh.blobs[i])), qtype: s.qtype, qclass: s.qclass,
		do: s.flags&slotDO != 0, cd: s.flags&slotCD != 0}
	f := newFlight(k, s.hash, true)
	sh.flights[s.hash] = f
	return f
}
