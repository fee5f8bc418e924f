// Package cache is dotproxy's answer cache: resolver.Middleware that sits
// in front of the upstream selector and answers repeated questions from
// memory.
//
// It owns the store (keyed by name, type, class and the DO and CD bits,
// bounded by entries and bytes, least recently used out first), the TTL
// rules (countdown, min/max clamps, RFC 2308 negative caching, brief
// SERVFAIL caching), the coalescing of concurrent misses, prefetch of
// popular entries and serve-stale (RFC 8767). It does not shape answers
// for the client (the listener sets the OPT record, strips hop-by-hop
// options and truncates for UDP), choose upstreams or read configuration:
// its Options come filled in from the config package.
package cache

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dotproxy/dotproxy/resolver"
)

// Defaults for Options' zero values.
const (
	// DefaultSize is the default Options.Size: a home network asks a few
	// hundred names a day, a busy one a few thousand.
	DefaultSize = 10000
	// DefaultMaxBytes is the default Options.MaxBytes: small next to a
	// router's RAM, and enough for DefaultSize entries of several
	// kilobytes each.
	DefaultMaxBytes = 32 << 20
	// DefaultMaxTTL is the default Options.MaxTTL.
	DefaultMaxTTL = 24 * time.Hour
	// DefaultNegativeTTL is the default Options.NegativeTTL: RFC 2308 §5
	// suggests at most 1 to 3 hours.
	DefaultNegativeTTL = time.Hour
	// DefaultServfailTTL is the default Options.ServfailTTL: RFC 9520
	// asks for at least 1 s and at most 5 min; 5 s keeps a failing name
	// from hammering the upstreams without hiding a recovery for long.
	DefaultServfailTTL = 5 * time.Second
	// DefaultStaleMaxAge is the default Options.StaleMaxAge (RFC 8767 §5
	// suggests 1 to 3 days).
	DefaultStaleMaxAge = 24 * time.Hour
	// DefaultStaleAfter is the default Options.StaleAfter: RFC 8767's
	// client-response timer, under a stub resolver's first retry.
	DefaultStaleAfter = 1800 * time.Millisecond
)

// Options configures a Cache. Zero values mean the defaults above.
type Options struct {
	// Size is the most entries the cache holds.
	Size int
	// MaxBytes is the most memory the cache costs the process: the
	// entries' heap, counted as the allocator hands it out (memsize.go),
	// up to 40% of MaxBytes, and the room the garbage collector takes
	// beside that much live heap (see heapShare).
	MaxBytes int
	// MinTTL raises every record's TTL to at least this (0: no floor).
	MinTTL time.Duration
	// MaxTTL lowers every record's TTL to at most this. A MaxTTL below
	// MinTTL is raised to MinTTL.
	MaxTTL time.Duration
	// NegativeTTL caps how long NXDOMAIN and NODATA answers are kept;
	// negative: they are not cached.
	NegativeTTL time.Duration
	// ServfailTTL is how long a failure (an upstream's SERVFAIL, or no
	// upstream answering) is remembered for its key, and how long a
	// stale answer is then served without asking again (RFC 8767's
	// failure recheck timer); negative: failures are not cached.
	ServfailTTL time.Duration
	// Prefetch refreshes popular entries in the background shortly
	// before they expire.
	Prefetch bool
	// ServeStale answers with an expired entry, TTL 30 and Extended DNS
	// Error 3 (Stale Answer), when the upstreams fail or are slow.
	ServeStale bool
	// StaleMaxAge is how long past its expiry an entry may be served
	// stale.
	StaleMaxAge time.Duration
	// StaleAfter is how long a miss waits for the upstreams before a
	// stale entry is served instead; the upstream query goes on in the
	// background and refreshes the entry.
	StaleAfter time.Duration
	// Now is the clock TTLs are counted by; nil means time.Now.
	Now func() time.Time
	// Logger receives hit and miss at Debug; nil discards.
	Logger *slog.Logger
}

// withDefaults returns o with its zero values replaced by the defaults.
func (o Options) withDefaults() Options {
	o.Size = cmp.Or(o.Size, DefaultSize)
	o.MaxBytes = cmp.Or(o.MaxBytes, DefaultMaxBytes)
	o.MaxTTL = cmp.Or(o.MaxTTL, DefaultMaxTTL)
	o.NegativeTTL = cmp.Or(o.NegativeTTL, DefaultNegativeTTL)
	o.ServfailTTL = cmp.Or(o.ServfailTTL, DefaultServfailTTL)
	o.StaleMaxAge = cmp.Or(o.StaleMaxAge, DefaultStaleMaxAge)
	o.StaleAfter = cmp.Or(o.StaleAfter, DefaultStaleAfter)
	o.MinTTL = max(o.MinTTL, 0)
	o.MaxTTL = max(o.MaxTTL, o.MinTTL)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Cache is an answer cache shared by every query that passes through its
// Middleware. It is safe for concurrent use. Close stops its background
// refreshes.
type Cache struct {
	opts   Options
	epoch  time.Time // the origin of the monotonic scale (mono)
	ttls   ttls
	log    *slog.Logger
	store  *store
	bg     background
	ctx    context.Context // parent of every upstream query the cache starts
	cancel context.CancelFunc

	closeMu sync.RWMutex // held for reading while a background query starts
	closed  bool

	stale, prefetches atomic.Uint64
}

// New returns an empty Cache configured by opts.
func New(opts Options) *Cache {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	negative := int64(seconds(opts.NegativeTTL))
	if opts.NegativeTTL < 0 {
		negative = -1
	}
	return &Cache{
		opts:   opts,
		epoch:  opts.Now(),
		ttls:   ttls{min: seconds(opts.MinTTL), max: seconds(opts.MaxTTL), negative: negative},
		log:    opts.Logger,
		store:  newStore(opts.Size, opts.MaxBytes),
		bg:     background{slots: make(chan struct{}, maxBackground)},
		ctx:    ctx,
		cancel: cancel,
	}
}

// Middleware returns the cache as resolver.Middleware: the resolver it
// wraps answers the misses.
func (c *Cache) Middleware() resolver.Middleware {
	return func(next resolver.Resolver) resolver.Resolver { return c.Wrap(next) }
}

// Wrap returns a Resolver that answers from the cache and asks next on a
// miss. Several wrapped resolvers may share one Cache only if they
// resolve alike.
func (c *Cache) Wrap(next resolver.Resolver) resolver.Resolver {
	return &cached{c: c, next: next}
}

// Close cancels the upstream queries the cache runs in the background
// (prefetches, and the shared queries of misses that had a stale answer
// to serve meanwhile, which outlive their clients to fill the cache) and
// waits for them to end. A miss that runs the shared query itself (no
// stale answer) ends with its own context. Call Close after the listener
// has shut down and before the upstreams close: a miss still waiting on
// another's query fails. After Close a miss asks the wrapped resolver in
// the client's own time and nothing more is stored.
func (c *Cache) Close() {
	c.closeMu.Lock()
	c.closed = true
	c.closeMu.Unlock()
	c.cancel()
	c.bg.wg.Wait()
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	Hits       uint64 // answered from a fresh entry (positive, negative or a cached failure)
	Misses     uint64 // not answered by a fresh entry or a cached failure: asked upstream, or joined a query in flight
	Stale      uint64 // answered with an expired entry (RFC 8767)
	Prefetches uint64 // background refreshes started before expiry
	Evictions  uint64 // entries pushed out by the size or memory bound
	Entries    int    // entries held now, expired ones kept for serve-stale included
	Bytes      int    // their heap, as the byte bound counts it: at most 40% of Options.MaxBytes
}

// Stats returns the counters so far.
func (c *Cache) Stats() Stats {
	st := c.store.stats()
	st.Stale = c.stale.Load()
	st.Prefetches = c.prefetches.Load()
	return st
}

// background bounds and tracks the upstream queries the cache runs on
// its own.
type background struct {
	slots chan struct{} // one token per background refresh running
	wg    sync.WaitGroup
}
