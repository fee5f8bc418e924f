package clients

import (
	"context"
	"maps"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

const (
	// maxLookups bounds the PTR lookups in flight: a router's DNS is
	// small, and a burst of new clients must not flood it.
	maxLookups = 4
	// askQueue is how many addresses may wait for the worker; beyond
	// it asks are dropped and made again by the client's next query.
	askQueue = 64
	// lookupTimeout bounds one PTR lookup: a router answers its own
	// reverse zone from memory.
	lookupTimeout = 3 * time.Second
	// A PTR answer is kept for its TTL within [minTTL, maxTTL]: a TTL of
	// 0 must not mean a lookup per query, and a device renamed on the
	// router is renamed here within the hour.
	minTTL = time.Minute
	maxTTL = time.Hour
	// negativeTTL: an address with no name is asked about again after
	// this; routers send NXDOMAIN without an SOA, so there is no TTL.
	negativeTTL = 5 * time.Minute
	// failureTTL: when the lookup failed (the router did not answer), the
	// client stays unnamed this long before it is tried again.
	failureTTL = 30 * time.Second
	// sweepInterval is how often expired answers are renewed (for
	// clients that asked since) or dropped.
	sweepInterval = 30 * time.Second
	// publishDelay gathers the answers that arrive together into one new
	// snapshot: a burst of new clients then copies the map once.
	publishDelay = 20 * time.Millisecond
	// evictSample is how many entries are looked at to pick the one to
	// drop when the cache is full.
	evictSample = 8
)

// result is one lookup's outcome, on its way to the worker.
type result struct {
	addr netip.Addr
	e    *entry
}

// work is the worker: it runs the lookups asked for, keeps their answers
// (the worker alone writes them) and publishes them as a new snapshot.
func (n *Names) work(ctx context.Context) {
	defer n.wg.Done()
	cache := maps.Clone(*n.ptr.Load())
	pending := make(map[netip.Addr]bool, maxLookups)
	results := make(chan result, maxLookups) // never blocks a lookup
	sweep := time.NewTicker(n.sweepEvery)
	defer sweep.Stop()
	publish := time.NewTimer(publishDelay)
	publish.Stop()
	dirty := false
	start := func(a netip.Addr) {
		if pending[a] || len(pending) >= maxLookups {
			return
		}
		pending[a] = true
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			results <- result{a, n.lookup(ctx, a)}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-n.asks:
			if e := cache[a]; e == nil || !n.now().Before(e.expires) {
				start(a)
			}
		case r := <-results:
			delete(pending, r.addr)
			if ctx.Err() != nil {
				return
			}
			if _, ok := cache[r.addr]; !ok && len(cache) >= n.max {
				evict(cache)
			}
			cache[r.addr] = r.e
			if !dirty {
				dirty = true
				publish.Reset(publishDelay)
			}
		case <-publish.C:
			snap := maps.Clone(cache)
			n.ptr.Store(&snap)
			dirty = false
		case <-sweep.C:
			now := n.now()
			dropped := false
			for a, e := range cache {
				if now.Before(e.expires) {
					continue
				}
				if e.used.Load() {
					start(a) // the old answer serves until the new one is in
				} else {
					delete(cache, a)
					dropped = true
				}
			}
			if dropped && !dirty {
				dirty = true
				publish.Reset(publishDelay)
			}
		}
	}
}

// evict drops one entry of the full cache: of a few picked at random
// (Go's map order), an absent name first, else the soonest to expire.
// Addresses that clients make up (spoofed, or new privacy addresses
// without names) thus push out each other before real names.
func evict(cache map[netip.Addr]*entry) {
	var victim netip.Addr
	var worst *entry
	seen := 0
	for a, e := range cache {
		if worst == nil || betterVictim(e, worst) {
			victim, worst = a, e
		}
		if seen++; seen == evictSample {
			break
		}
	}
	delete(cache, victim)
}

// betterVictim reports whether e is less worth keeping than w.
func betterVictim(e, w *entry) bool {
	if (e.name == "") != (w.name == "") {
		return e.name == ""
	}
	return e.expires.Before(w.expires)
}

// lookup asks for addr's PTR record and returns what to keep: its name,
// or no name, until when.
func (n *Names) lookup(ctx context.Context, addr netip.Addr) *entry {
	rev, err := dns.ReverseAddr(addr.String())
	if err != nil {
		return &entry{expires: n.now().Add(negativeTTL)}
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(rev, dns.TypePTR)
	m, err := resolver.ResolveMsg(ctx, n.reverse, q)
	now := n.now()
	if err != nil || m == nil {
		n.log.Debug("client name lookup failed", "client", addr, "err", err)
		return &entry{expires: now.Add(failureTTL)}
	}
	switch m.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError, dns.RcodeRefused: // REFUSED: no rule covers the reverse zone
		return &entry{expires: now.Add(negativeTTL)}
	default:
		n.log.Debug("client name lookup failed", "client", addr, "rcode", dns.RcodeToString[m.Rcode])
		return &entry{expires: now.Add(failureTTL)}
	}
	for _, rr := range m.Answer {
		// The first PTR record, whatever its owner: a classless
		// delegation (RFC 2317) answers through a CNAME.
		if p, ok := rr.(*dns.PTR); ok && p.Ptr != "." {
			ttl := min(max(time.Duration(p.Hdr.Ttl)*time.Second, minTTL), maxTTL)
			name := normal(p.Ptr)
			n.log.Debug("client named", "client", addr, "name", name)
			return &entry{name: name, expires: now.Add(ttl)}
		}
	}
	return &entry{expires: now.Add(negativeTTL)}
}
