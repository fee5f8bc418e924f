package cache

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// answerShapes are the kinds of answer a cache fills with: what a home
// network asks, and what a flood of unique names with large answers
// brings.
var answerShapes = []struct {
	name  string
	qtype uint16
	build func(q *dns.Msg) *dns.Msg
}{
	{"one A", dns.TypeA, withA(3600, 1)},
	{"eight A", dns.TypeA, withA(3600, 8)},
	{"NXDOMAIN", dns.TypeA, negativeAnswer(dns.RcodeNameError, 3600, 3600)},
	{"CNAME chain", dns.TypeA, withChain(3)},
	{"TXT 3 KB", dns.TypeTXT, withTXT(3000)},
}

// withChain answers q with a CNAME chain of n links ending in an A.
func withChain(n int) func(q *dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		name := q.Question[0].Name
		for i := range n {
			next := fmt.Sprintf("edge%d.cdn-provider.example.net.", i)
			m.Answer = append(m.Answer, &dns.CNAME{
				Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 3600},
				Target: next,
			})
			name = next
		}
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
			A:   net.IPv4(192, 0, 2, 1).To4(),
		})
		return m
	}
}

// withTXT answers q with TXT records of size octets in all, in strings
// of 255.
func withTXT(size int) func(q *dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		var txt []string
		for left := size; left > 0; left -= 255 {
			txt = append(txt, strings.Repeat("x", min(left, 255)))
		}
		m.Answer = []dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 3600},
			Txt: txt,
		}}
		return m
	}
}

// fillHeap fills a cache bounded by maxBytes (and size entries) with
// distinct names answered by build, n queries, and returns the live heap
// the cache holds after a collection, with its stats.
func fillHeap(tb testing.TB, size, maxBytes, n int, qtype uint16, build func(q *dns.Msg) *dns.Msg) (heap uint64, st Stats) {
	c := New(Options{Size: size, MaxBytes: maxBytes})
	r := c.Middleware()(answering(build))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		q := query(fmt.Sprintf("host%d.example.com.", i), qtype, true, false)
		resolve(tb, r, q)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st = c.Stats()
	runtime.KeepAlive(c)
	c.Close()
	return after.HeapAlloc - before.HeapAlloc, st
}

// BenchmarkMemoryShapes reports, for each answer shape, the live heap per
// entry beside what the byte bound counts for it.
func BenchmarkMemoryShapes(b *testing.B) {
	const n = 20000
	for _, s := range answerShapes {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				heap, st := fillHeap(b, 2*n, 1<<30, n, s.qtype, s.build)
				if st.Entries != n {
					b.Fatalf("%d entries, want %d", st.Entries, n)
				}
				b.ReportMetric(float64(heap)/n, "heap-B/entry")
				b.ReportMetric(float64(st.Bytes)/n, "counted-B/entry")
			}
		})
	}
}

// BenchmarkMaxMemoryRSS fills a cache bounded at the default 32 MiB with
// many more distinct names than fit, as a flood of unique names does,
// and reports the process's resident memory that came with it (VmRSS and
// its peak VmHWM, from before the fill to after) against the bound. Run
// it alone: the figure is the whole process's.
func BenchmarkMaxMemoryRSS(b *testing.B) {
	const n = 200000
	for b.Loop() {
		c := New(Options{Size: 10 * n, MaxBytes: DefaultMaxBytes})
		r := c.Middleware()(answering(withA(3600, 1)))
		runtime.GC()
		rss0, _ := procMemory(b)
		for i := range n {
			resolve(b, r, query(fmt.Sprintf("host%d.example.com.", i), dns.TypeA, true, false))
		}
		rss1, hwm1 := procMemory(b)
		st := c.Stats()
		if st.Evictions == 0 {
			b.Fatalf("no evictions: the bound never applied")
		}
		b.ReportMetric(float64(st.Entries), "entries")
		b.ReportMetric(float64(rss1-rss0)/DefaultMaxBytes, "RSS/bound")
		b.ReportMetric(float64(hwm1-rss0)/DefaultMaxBytes, "peakRSS/bound")
		runtime.KeepAlive(c)
		c.Close()
	}
}

// procMemory returns the process's VmRSS and VmHWM in bytes.
func procMemory(tb testing.TB) (rss, hwm int) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status:", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		var kb int
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			rss = kb << 10
		}
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// TestMaxBytesBoundsHeap fills a cache with more answers of every shape
// than its byte bound holds and checks that the live heap it keeps is
// what it counts, and within the heap's share of the bound: a byte bound
// that counted less than the entries take let the cache use several
// times the memory configured.
func TestMaxBytesBoundsHeap(t *testing.T) {
	const maxBytes = 4 << 20
	c := New(Options{Size: 1 << 20, MaxBytes: maxBytes})
	defer c.Close()
	var rs []func(i int)
	for _, s := range answerShapes {
		r := c.Middleware()(answering(s.build))
		rs = append(rs, func(i int) {
			resolve(t, r, query(fmt.Sprintf("host%d.%s.example.", i, strings.ReplaceAll(s.name, " ", "-")), s.qtype, true, false))
		})
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 40000 {
		rs[i%len(rs)](i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := c.Stats()
	heap := int(after.HeapAlloc) - int(before.HeapAlloc)
	if st.Evictions == 0 {
		t.Fatalf("no evictions: %+v", st)
	}
	if st.Bytes > heapBound(maxBytes) {
		t.Errorf("counted %d bytes, over the heap bound %d", st.Bytes, heapBound(maxBytes))
	}
	// The heap holds a little more than the entries: the shards, the
	// map's slack.
	if heap > maxBytes/2 || heap < st.Bytes*9/10 || heap > st.Bytes*12/10 {
		t.Errorf("live heap %d bytes for %d counted, bound %d: want the count within 10%% and under half the bound", heap, st.Bytes, maxBytes)
	}
	t.Logf("live heap %d bytes, %d counted, %d entries", heap, st.Bytes, st.Entries)
	runtime.KeepAlive(c)
}
