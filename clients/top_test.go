package clients

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestTop: the busiest clients come first with their exact counts; a
// mapped IPv4 address counts as the IPv4 one; queries of dotproxy's own
// are not counted.
func TestTop(t *testing.T) {
	top := NewTop(0)
	for _, tc := range []struct {
		addr string
		n    int
	}{
		{"192.168.1.10", 5}, {"::ffff:192.168.1.10", 2}, {"fd00::1", 9}, {"192.168.1.11", 1}, {"192.168.1.12", 1},
	} {
		for range tc.n {
			top.ObserveQuery(resolver.QueryEvent{Client: netip.AddrPortFrom(netip.MustParseAddr(tc.addr), 5353)})
		}
	}
	top.ObserveQuery(resolver.QueryEvent{})
	want := []ClientCount{
		{netip.MustParseAddr("fd00::1"), 9},
		{netip.MustParseAddr("192.168.1.10"), 7},
		{netip.MustParseAddr("192.168.1.11"), 1},
	}
	if got := top.Top(3); !slices.Equal(got, want) {
		t.Errorf("top 3 = %v, want %v", got, want)
	}
	if got := top.Top(10); len(got) != 4 {
		t.Errorf("top 10 = %v, want the 4 clients", got)
	}
}

// TestTopBounded: a flood of one-off addresses, from many goroutines,
// keeps memory bounded and the busy clients on top, counted at least
// as often as they asked.
func TestTopBounded(t *testing.T) {
	const capacity = 64
	top := NewTop(capacity)
	busy := []netip.Addr{netip.MustParseAddr("192.168.1.2"), netip.MustParseAddr("fd00::2")}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				top.Add(netip.AddrFrom4([4]byte{10, byte(w), byte(i >> 8), byte(i)}))
				if i%4 == 0 {
					top.Add(busy[i%8/4])
				}
			}
		})
	}
	wg.Wait()
	kept := 0
	for i := range top.shards {
		kept += len(top.shards[i].counts)
	}
	if kept > capacity {
		t.Errorf("%d addresses kept, want at most %d", kept, capacity)
	}
	got := top.Top(2)
	if len(got) != 2 {
		t.Fatalf("top 2 = %v", got)
	}
	for _, c := range got {
		if !slices.Contains(busy, c.Addr) || c.Queries < 2500 {
			t.Errorf("top 2 = %v, want the two busy clients with 2500 queries or more each", got)
		}
	}
}

// BenchmarkTopAdd is the cost Top adds to every query while the admin
// listener is on: from one goroutine, then from every core at once, for
// one client and for 256.
func BenchmarkTopAdd(b *testing.B) {
	for _, n := range []int{1, 256} {
		addrs := make([]netip.Addr, n)
		for i := range addrs {
			addrs[i] = netip.AddrFrom4([4]byte{192, 168, 1, byte(i)})
		}
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			top := NewTop(0)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				top.Add(addrs[i%n])
				i++
			}
		})
		b.Run(fmt.Sprintf("clients=%d/parallel", n), func(b *testing.B) {
			top := NewTop(0)
			b.ReportAllocs()
			var seed atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(seed.Add(97)) // the goroutines' clients apart, as a house's are
				for pb.Next() {
					top.Add(addrs[i%n])
					i++
				}
			})
		})
	}
}
