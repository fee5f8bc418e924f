package ratelimit

import (
	"net/netip"
	"sync"
	"time"
)

// shard is one lock's worth of the prefix table: a map and a list from
// most to least recently used, so that a full shard forgets the prefix
// idle for longest.
type shard struct {
	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
	lru     bucket // sentinel: lru.next is the most recent
	max     int
}

// bucket is one prefix's rate, kept as the time its next answer is due
// at the steady rate (GCRA, the generic cell rate algorithm: a token
// bucket in one number).
type bucket struct {
	prefix     netip.Prefix
	due        time.Time // answers up to window ahead of now are allowed
	limited    uint64    // answers over the limit so far, for slip
	prev, next *bucket
}

func (s *shard) init(max int) {
	s.buckets = make(map[netip.Prefix]*bucket)
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	s.max = max
}

// take counts one answer to p at now. It reports whether p is over its
// rate and, if so, how many of its answers have been so far.
func (s *shard) take(p netip.Prefix, now time.Time, interval, window time.Duration) (over bool, limited uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[p]
	if b == nil {
		b = s.add(p, now)
	} else {
		s.unlink(b)
		s.pushFront(b)
	}
	if b.due.Before(now) {
		b.due = now // idle: the whole burst is back
	}
	if b.due.Sub(now) >= window {
		b.limited++
		return true, b.limited
	}
	b.due = b.due.Add(interval)
	return false, 0
}

// add makes a bucket for p, forgetting the least recently used prefix
// when the shard is full. Caller holds mu.
func (s *shard) add(p netip.Prefix, now time.Time) *bucket {
	var b *bucket
	if len(s.buckets) >= s.max && s.lru.prev != &s.lru {
		b = s.lru.prev // reused: a flood of new prefixes allocates nothing
		s.unlink(b)
		delete(s.buckets, b.prefix)
		*b = bucket{}
	} else {
		b = new(bucket)
	}
	b.prefix, b.due = p, now
	s.buckets[p] = b
	s.pushFront(b)
	return b
}

func (s *shard) unlink(b *bucket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

func (s *shard) pushFront(b *bucket) {
	b.prev, b.next = &s.lru, s.lru.next
	s.lru.next.prev = b
	s.lru.next = b
}

func (s *shard) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buckets)
}
