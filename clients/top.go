package clients

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"

	"github.com/dotproxy/dotproxy/resolver"
)

// DefaultTopCapacity is the default capacity of NewTop: the addresses
// whose counts are kept, far more than a status page shows, so that the
// busiest are among them even while many others come and go.
const DefaultTopCapacity = 1024

// topShards spreads the counting over locks: the listener's goroutines
// count at once, each mostly for another client.
const topShards = 16

// Top counts client queries since the process started, per address, in
// bounded memory: it keeps the counts of a fixed number of addresses, and
// when a new address comes while they are all taken it takes the place
// of the least counted of a few, with that count plus one, as the
// Space-Saving algorithm does (Metwally, Agrawal and El Abbadi, 2005).
// Busy clients thus stay, whatever number of others come and go, and a
// count is exact unless its address took another's place (then it may
// be too high, never too low). It implements the listener's Observer.
type Top struct {
	shards [topShards]topShard
}

type topShard struct {
	mu     sync.Mutex
	counts map[netip.Addr]uint64
	max    int
	_      [40]byte // a shard per cache line: counting clients apart never contend
}

// ClientCount is one client's query count.
type ClientCount struct {
	Addr    netip.Addr
	Queries uint64
}

// NewTop returns a Top that keeps the counts of about capacity addresses
// (DefaultTopCapacity when not positive).
func NewTop(capacity int) *Top {
	if capacity <= 0 {
		capacity = DefaultTopCapacity
	}
	t := &Top{}
	for i := range t.shards {
		t.shards[i].max = max(capacity/topShards, 1)
		t.shards[i].counts = make(map[netip.Addr]uint64)
	}
	return t
}

// ObserveQuery counts the query's client; a query of dotproxy's own (no
// client) is not counted.
func (t *Top) ObserveQuery(ev resolver.QueryEvent) {
	t.Add(ev.Client.Addr())
}

// Add counts one query from addr. An IPv4 address mapped into IPv6
// counts as the IPv4 one.
func (t *Top) Add(addr netip.Addr) {
	if !addr.IsValid() {
		return
	}
	addr = addr.Unmap().WithZone("")
	b := addr.As16()
	h := b[15] ^ b[14] ^ b[13] ^ b[11] ^ b[7] // the host part varies most
	s := &t.shards[h%topShards]
	s.mu.Lock()
	if c, ok := s.counts[addr]; ok || len(s.counts) < s.max {
		s.counts[addr] = c + 1
	} else {
		s.replace(addr)
	}
	s.mu.Unlock()
}

// replace gives addr the place of one of the least counted addresses
// among a few picked at random (Go's map order), with that count plus
// one. Looking at a few, not all, keeps a flood of new addresses cheap;
// the count it takes over is still one of the smallest.
func (s *topShard) replace(addr netip.Addr) {
	var victim netip.Addr
	least, seen := uint64(0), 0
	for a, c := range s.counts {
		if seen == 0 || c < least {
			victim, least = a, c
		}
		if seen++; seen == evictSample {
			break
		}
	}
	delete(s.counts, victim)
	s.counts[addr] = least + 1
}

// Top returns the n busiest clients, busiest first; of equal counts, the
// lower address first.
func (t *Top) Top(n int) []ClientCount {
	var all []ClientCount
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for a, c := range s.counts {
			all = append(all, ClientCount{a, c})
		}
		s.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b ClientCount) int {
		if c := cmp.Compare(b.Queries, a.Queries); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
	return all[:min(n, len(all))]
}
