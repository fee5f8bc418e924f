package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestEviction: past the entry or byte bound the least recently used
// entry goes first; a hit counts as a use.
func TestEviction(t *testing.T) {
	// withA(300, 30) is 30 records; stored packed, some 760 B of heap by
	// the cache's count (memsize.go): two fit in the 2 kB of heap a
	// MaxBytes of 5 kB leaves, three do not.
	for _, tc := range []struct {
		name     string
		opts     Options
		records  int
		evicted  string // the name gone after a, b, c are stored, a hit, d stored
		entries  int
		maxBytes int
	}{
		{name: "by count", opts: Options{Size: 3}, records: 1, evicted: "b", entries: 3},
		{name: "by bytes", opts: Options{MaxBytes: 5000}, records: 30, evicted: "b", entries: 2, maxBytes: 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := answering(withA(300, tc.records))
			tc.opts.Now = newClock().Now
			c, r := newCache(t, tc.opts, up)
			ask := func(name string) {
				resolve(t, r, query(name+".example.", dns.TypeA, false, false))
			}
			ask("a")
			ask("b")
			if tc.name == "by count" {
				ask("c")
			}
			ask("a") // a hit: a is now the most recent
			ask("d")
			before := up.count()
			ask("a")
			ask("d")
			if up.count() != before {
				t.Fatalf("a or d was evicted")
			}
			ask(tc.evicted)
			if up.count() != before+1 {
				t.Fatalf("%s was still cached", tc.evicted)
			}
			st := c.Stats()
			if st.Evictions == 0 || st.Entries > tc.entries || (tc.maxBytes > 0 && st.Bytes > tc.maxBytes) {
				t.Fatalf("stats %+v, want evictions, at most %d entries, bytes within %d", st, tc.entries, tc.maxBytes)
			}
		})
	}
}

// TestShardBounds: a large cache is split into shards whose bounds add
// up to at least the configured ones (the heap's share of the byte
// bound), and a full one holds about Size entries.
func TestShardBounds(t *testing.T) {
	heap := heapBound(1 << 20)
	for _, size := range []int{1, 3, 511, 512, 10000, 1 << 20} {
		s := newStore(size, 1<<20)
		var entries, bytes int
		for i := range s.shards {
			entries += s.shards[i].maxEntries
			bytes += s.shards[i].maxBytes
		}
		if entries < size || entries >= size+len(s.shards) || bytes < heap || bytes > heap+len(s.shards) {
			t.Errorf("size %d: %d shards bound %d entries, %d bytes", size, len(s.shards), entries, bytes)
		}
		if n := len(s.shards); n > 1 && (size/n < minPerShard || heap/n < minShardBytes) {
			t.Errorf("size %d: %d shards of %d entries", size, n, size/n)
		}
	}

	up := answering(withA(300, 1))
	c, r := newCache(t, Options{Size: 4096, Now: newClock().Now}, up)
	for i := range 8192 {
		resolve(t, r, query(fmt.Sprintf("n%d.example.", i), dns.TypeA, false, false))
	}
	if st := c.Stats(); st.Entries > 4096 || st.Entries < 4096*3/4 || st.Evictions != uint64(8192-st.Entries) {
		t.Fatalf("after 8192 names in a cache of 4096: %+v", st)
	}
}

// TestBytesAccounting: the byte count follows entries as they are
// stored, fail, go stale and go, back to 0 when the cache is empty.
func TestBytesAccounting(t *testing.T) {
	var mode string
	up := &fakeUpstream{answer: func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		switch mode {
		case "servfail":
			return new(dns.Msg).SetRcode(q, dns.RcodeServerFailure), nil
		case "ttl0":
			return withA(0, 1)(q), nil
		}
		return withA(60, 3)(q), nil
	}}
	clk := newClock()
	c, r := newCache(t, Options{Now: clk.Now, ServeStale: true, StaleMaxAge: time.Hour}, up)
	ask := func(name string) { resolve(t, r, query(name, dns.TypeA, false, false)) }
	counted := func() int {
		total := 0
		for i := range c.store.shards {
			sh := &c.store.shards[i]
			sh.mu.Lock()
			for _, i := range sh.index {
				total += int(sh.slots[i].size)
			}
			sh.mu.Unlock()
		}
		return total
	}
	check := func(step string) {
		t.Helper()
		if st := c.Stats(); st.Bytes != counted() || st.Bytes < 0 {
			t.Fatalf("%s: Bytes %d, entries add up to %d", step, st.Bytes, counted())
		}
	}
	ask("a.example.")
	ask("b.example.")
	check("stored")
	clk.advance(time.Minute)
	mode = "servfail"
	ask("a.example.") // stale, failure remembered beside it
	ask("c.example.") // failure alone
	check("failed")
	clk.advance(DefaultServfailTTL)
	mode = "ttl0"
	ask("a.example.")
	ask("c.example.")
	check("replaced")
	clk.advance(2 * time.Hour)
	ask("b.example.") // too old to serve stale: dropped
	if st := c.Stats(); st.Bytes != 0 || st.Entries != 0 {
		t.Fatalf("empty cache: %+v", st)
	}
}
