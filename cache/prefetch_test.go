package cache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestPrefetch: an entry hit often enough in its lifetime is refreshed in
// the background by a hit in the last tenth of its TTL, so that it never
// misses; one hit too rarely, hit too early, too short-lived, or with
// prefetch off, is not.
func TestPrefetch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ttl      uint32
		hits     int           // before the last one
		lastAt   time.Duration // when the last hit comes, from storing
		off      bool
		wantPref bool
	}{
		{name: "popular, near expiry", ttl: 300, hits: 2, lastAt: 271 * time.Second, wantPref: true},
		{name: "popular, at the window's start", ttl: 300, hits: 2, lastAt: 270 * time.Second, wantPref: true},
		{name: "popular, too early", ttl: 300, hits: 2, lastAt: 269 * time.Second},
		{name: "unpopular", ttl: 300, hits: 1, lastAt: 290 * time.Second},
		{name: "too short-lived", ttl: 9, hits: 5, lastAt: 8 * time.Second},
		{name: "prefetch off", ttl: 300, hits: 2, lastAt: 290 * time.Second, off: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := answering(withA(tc.ttl, 1))
			clk := newClock()
			c, r := newCache(t, Options{Now: clk.Now, Prefetch: !tc.off}, up)
			q := query("example.com.", dns.TypeA, false, false)
			resolve(t, r, q) // the miss that stores it
			for range tc.hits {
				resolve(t, r, q)
			}
			clk.advance(tc.lastAt)
			if m := resolve(t, r, q); m.Answer[0].Header().Ttl != tc.ttl-uint32(tc.lastAt/time.Second) {
				t.Fatalf("the last hit was not served from the cache: %v", m)
			}
			if tc.wantPref {
				waitFor(t, "the refresh", func() bool { return up.count() == 2 && len(upFlights(r)) == 0 })
			} else if c.Close(); up.count() != 1 { // Close waits for any background refresh
				t.Fatalf("%d upstream queries, want 1", up.count())
			}
			if st := c.Stats(); (st.Prefetches == 1) != tc.wantPref {
				t.Fatalf("stats %+v", st)
			}
			if !tc.wantPref {
				return
			}
			// The refreshed entry outlives the old one's expiry.
			sinceRefresh := time.Duration(tc.ttl)*time.Second - tc.lastAt
			clk.advance(sinceRefresh)
			if m := resolve(t, r, q); m.Answer[0].Header().Ttl != tc.ttl-uint32(sinceRefresh/time.Second) || up.count() != 2 {
				t.Fatalf("after the old expiry: %v after %d queries", m, up.count())
			}
		})
	}
}

// TestPrefetchBounded: at most one refresh per key is in flight, and at
// most maxBackground in all; hits past the bound are still answered.
func TestPrefetchBounded(t *testing.T) {
	var block atomic.Bool
	hold := make(chan struct{})
	var mu sync.Mutex
	perName := map[string]int{}
	up := &fakeUpstream{answer: func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		mu.Lock()
		perName[q.Question[0].Name]++
		mu.Unlock()
		if block.Load() {
			select {
			case <-hold:
			case <-ctx.Done():
			}
		}
		return withA(300, 1)(q), nil
	}}
	clk := newClock()
	c, r := newCache(t, Options{Now: clk.Now, Prefetch: true}, up)
	t.Cleanup(func() { close(hold) }) // before the cache's Close waits for the refreshes
	names := make([]string, 2*maxBackground)
	for i := range names {
		names[i] = fmt.Sprintf("n%d.example.", i)
		resolve(t, r, query(names[i], dns.TypeA, false, false))
	}
	stored := up.count()

	block.Store(true)
	clk.advance(280 * time.Second)
	for range 5 {
		for _, name := range names {
			if m := resolve(t, r, query(name, dns.TypeA, false, false)); m.Answer[0].Header().Ttl != 20 {
				t.Fatalf("hit %v", m)
			}
		}
	}
	waitFor(t, "the refreshes to reach upstream", func() bool { return up.count()-stored == maxBackground })
	mu.Lock()
	defer mu.Unlock()
	for name, n := range perName {
		if n > 2 {
			t.Fatalf("%s asked %d times", name, n)
		}
	}
	if st := c.Stats(); st.Prefetches != maxBackground {
		t.Fatalf("stats %+v", st)
	}
}
