package cache

import "time"

const (
	// prefetchMinHits is how often an entry must have been hit since it
	// was stored to count as popular enough to prefetch.
	prefetchMinHits = 3
	// prefetchWindow: an entry is prefetched by a hit in the last
	// 1/prefetchWindow of its TTL (Unbound's 10%).
	prefetchWindow = 10
	// prefetchMinTTL is the shortest TTL, in seconds, worth prefetching:
	// below it the window is shorter than a round trip upstream.
	prefetchMinTTL = 10
)

// outcome is what a lookup found for a key.
type outcome int

const (
	miss    outcome = iota // nothing fresh: ask upstream (serving stale if it fails)
	hit                    // a fresh answer
	failing                // a failure remembered: answer with it, or stale
)

// result is a lookup's finding. Its answers are immutable: they may be
// used after the shard's lock is released.
type result struct {
	outcome outcome
	fresh   *answer // hit: the answer
	age     uint32  // hit: seconds since it was stored
	stale   *answer // miss or failing: an expired answer that may be served stale
	fail    *failed // failing: the failure
	refresh *flight // hit: a prefetch the caller must start
}

// lookup finds what the cache holds for k (hash h) at time now. For an
// inline lookup, which may not wait on an upstream, it reports false when
// the outcome is a miss, and then changes nothing: not the LRU order, not
// the counters, not an expired entry, so that the lookup that follows in
// a goroutine that may wait does it all once.
func (c *Cache) lookup(k *key, h uint64, now time.Time, inline bool) (result, bool) {
	sh := c.store.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.find(k, h)
	if e == nil {
		if inline {
			return result{}, false
		}
		sh.misses++
		return result{}, true
	}
	if e.data != nil && now.Before(e.expires) {
		sh.touch(e)
		return c.hit(sh, e, now), true
	}
	remembered := e.fail != nil && now.Before(e.fail.until)
	if inline && !remembered {
		return result{}, false
	}
	sh.touch(e)
	var r result
	if e.data != nil {
		if c.opts.ServeStale && now.Before(e.expires.Add(c.opts.StaleMaxAge)) {
			r.stale = e.data
		} else {
			e.data = nil
			sh.resize(e)
		}
	}
	if remembered {
		r.outcome, r.fail = failing, e.fail
		if r.stale == nil {
			sh.hits++
		}
		return r, true
	}
	sh.misses++
	if e.data == nil {
		sh.remove(e)
	} else if e.fail != nil {
		e.fail = nil
		sh.resize(e)
	}
	return r, true
}

// hit counts a hit on e, fresh at now, and returns it, with the prefetch
// to start when it is due. Caller holds sh.mu.
func (c *Cache) hit(sh *shard, e *entry, now time.Time) result {
	sh.hits++
	e.hits++
	r := result{outcome: hit, fresh: e.data, age: uint32(max(now.Sub(e.stored), 0) / time.Second)}
	if c.opts.Prefetch && c.prefetchDue(e, now) {
		r.refresh = sh.startRefresh(e, &c.bg)
	}
	return r
}

// prefetchDue reports whether the fresh entry e, just hit, is popular and
// close enough to expiry to be refreshed now.
func (c *Cache) prefetchDue(e *entry, now time.Time) bool {
	ttl := time.Duration(e.data.ttl) * time.Second
	return e.hits >= prefetchMinHits && e.data.ttl >= prefetchMinTTL &&
		e.expires.Sub(now) <= ttl/prefetchWindow
}

// startRefresh registers a background refresh of e and returns it, or
// returns nil when one is already in flight for e's key or the bound on
// background refreshes is reached. Caller holds mu.
func (sh *shard) startRefresh(e *entry, bg *background) *flight {
	if sh.flights[e.hash] != nil {
		return nil
	}
	select {
	case bg.slots <- struct{}{}:
	default:
		return nil
	}
	f := newFlight(e.key, e.hash, true)
	sh.flights[e.hash] = f
	return f
}
