package cache

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// benchNames is the name set of the hit benchmarks: a home network's
// worth.
const benchNames = 1000

func benchQueries(n int) []*dns.Msg {
	qs := make([]*dns.Msg, n)
	for i := range qs {
		qs[i] = query(fmt.Sprintf("host%d.example.com.", i), dns.TypeA, true, false)
	}
	return qs
}

// BenchmarkHit is one hit: lookup, TTL countdown and the copy for the
// caller, for a typical answer (one A record, EDNS query).
func BenchmarkHit(b *testing.B) {
	_, r := newCache(b, Options{}, answering(withA(3600, 1)))
	q := benchQueries(1)[0]
	resolve(b, r, q)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := resolver.ResolveMsg(ctx, r, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHitParallel is hits on benchNames names from every core.
func BenchmarkHitParallel(b *testing.B) {
	_, r := newCache(b, Options{}, answering(withA(3600, 1)))
	qs := benchQueries(benchNames)
	for _, q := range qs {
		resolve(b, r, q)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := resolver.ResolveMsg(ctx, r, qs[i%len(qs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkMemoryPerEntry fills a cache with 100,000 typical answers and
// reports the heap they take per entry, beside the cache's own estimate
// (what the MaxBytes bound counts).
func BenchmarkMemoryPerEntry(b *testing.B) {
	const n = 100000
	for b.Loop() {
		up := answering(withA(3600, 1))
		c := New(Options{Size: 2 * n, MaxBytes: 1 << 30}) // shards fill unevenly
		r := c.Middleware()(up)
		qs := benchQueries(n)
		// The queries are the benchmark's, not the cache's: allocated
		// before the first reading.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, q := range qs {
			resolve(b, r, q)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		st := c.Stats()
		if st.Entries != n {
			b.Fatalf("%d entries, want %d", st.Entries, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/entry")
		b.ReportMetric(float64(st.Bytes)/n, "counted-B/entry")
		runtime.KeepAlive(qs)
		c.Close()
	}
}

// BenchmarkMiss is one miss on a fresh name each time, with the cache at
// its default size (so that, past it, every miss evicts), against the
// same upstream without the cache: what the cache adds to a miss
// (lookups, the shared query, storing, the answer copied from the stored
// form). Requests carry their wire form, as the listener's do.
func BenchmarkMiss(b *testing.B) {
	for _, withCache := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%v", withCache), func(b *testing.B) {
			var r resolver.Resolver = answering(withA(3600, 1))
			if withCache {
				_, r = newCache(b, Options{}, r)
			}
			reqs := make([]*resolver.Request, b.N)
			for i := range reqs {
				q := query(fmt.Sprintf("host%d.example.com.", i), dns.TypeA, true, false)
				wire, err := q.Pack()
				if err != nil {
					b.Fatal(err)
				}
				req := resolver.NewRequest(q)
				req.Wire, req.QuestionEnd, req.Limit = wire, len(wire)-11, 1232 // the OPT record ends it
				reqs[i] = req
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.Resolve(ctx, reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
