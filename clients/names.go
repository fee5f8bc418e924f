// Package clients knows dotproxy's clients: the name of each client
// address, and which clients ask the most.
//
// It owns naming (a client's name from the hosts and lease files, else
// from a PTR lookup of its address, cached, done in the background so
// that no query waits on it) and the top-clients tally of the status
// page, both in bounded memory. It does not read hosts files (the filter
// loads them; Options.Hosts asks it), decide where a PTR query goes
// (Options.Reverse does: the forward rules of the house, never a public
// resolver), or decide what a name does (filter groups match it, with
// the house's domain; the query log and the status page show it).
package clients

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dotproxy/dotproxy/resolver"
)

// DefaultMaxNames is the default Options.MaxNames: a house has tens of
// clients and a small office hundreds; IPv6 privacy addresses multiply
// them by a few a day.
const DefaultMaxNames = 4096

// Options configures Names. Zero values mean the defaults.
type Options struct {
	// Hosts returns the name the hosts and lease files give addr now
	// (the lease's host name, a hosts line's first name), "" for none.
	// Nil: no files.
	Hosts func(addr netip.Addr) string
	// Reverse answers the PTR queries for clients' reverse names. It is
	// to send them only where the house's names are (the router: rule, a
	// forward rule for a reverse zone) and refuse the rest: a client's
	// address is nothing for a public resolver to learn. Nil: no PTR
	// lookups.
	Reverse resolver.Resolver
	// MaxNames bounds the PTR answers kept, names and their absence;
	// DefaultMaxNames when zero.
	MaxNames int
	// Now is the clock the answers' TTLs run on; nil is time.Now.
	Now func() time.Time
	// Logger receives the lookups' results at debug; nil discards them.
	Logger *slog.Logger
}

// Names maps client addresses to names. Create it with New; Start runs
// the PTR lookups and Stop ends them. ClientName is safe for concurrent use
// and cheap enough for every query: an atomic load and a map lookup or
// two.
type Names struct {
	hosts   func(netip.Addr) string
	reverse resolver.Resolver
	max     int
	now     func() time.Time
	log     *slog.Logger
	// sweepEvery is sweepInterval; tests shorten it.
	sweepEvery time.Duration

	// ptr is the PTR answers as of the worker's last publication,
	// replaced whole and only read: a query never takes a lock here.
	ptr atomic.Pointer[map[netip.Addr]*entry]
	// asks carries addresses with no entry to the worker; when it is
	// full an ask is dropped, and the client's next query asks again.
	asks chan netip.Addr

	lifecycle sync.Once
	mu        sync.Mutex
	cancel    context.CancelFunc // stops the worker
	wg        sync.WaitGroup
}

// entry is one PTR answer: a name, or "" when there is none.
type entry struct {
	name    string
	expires time.Time // the worker's: when to ask again
	// used is set by ClientName when it hands the entry out, so that the
	// worker renews expired entries of clients still asking and drops
	// the others.
	used atomic.Bool
}

// touch marks e used, writing only the first time: the entries of busy
// clients are read by every query, and a write each time would have the
// cores fight over the cache line.
func (e *entry) touch() {
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// New returns Names for opts. Nothing is looked up until Start.
func New(opts Options) *Names {
	n := &Names{hosts: opts.Hosts, reverse: opts.Reverse, max: opts.MaxNames, now: opts.Now,
		log: opts.Logger, asks: make(chan netip.Addr, askQueue), sweepEvery: sweepInterval}
	if n.max <= 0 {
		n.max = DefaultMaxNames
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.ptr.Store(&map[netip.Addr]*entry{})
	return n
}

// ClientName returns the name of the client at addr, in lower case
// without the trailing dot: its hosts or lease file's name, else the
// name a PTR lookup found; "" when none is known (yet). It never waits:
// when nothing is cached for addr it asks for a lookup in the
// background, so that a new client's first queries go unnamed.
func (n *Names) ClientName(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	if n.hosts != nil {
		if name := n.hosts(addr); name != "" {
			return normal(name)
		}
	}
	if n.reverse == nil {
		return ""
	}
	if e := (*n.ptr.Load())[addr]; e != nil {
		e.touch()
		return e.name
	}
	select {
	case n.asks <- addr:
	default:
	}
	return ""
}

// normal returns name in lower case without the trailing dot, the form
// names are shown and compared in. It does not allocate for a name
// already in that form.
func normal(name string) string {
	return strings.TrimSuffix(lowerASCII(name), ".")
}

// lowerASCII returns s in lower case, allocating only when s has upper
// case.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// Start runs the PTR lookups in the background until Stop. Without
// Options.Reverse there are none, and it does nothing.
func (n *Names) Start() {
	n.lifecycle.Do(func() {
		if n.reverse == nil {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		n.mu.Lock()
		n.cancel = cancel
		n.mu.Unlock()
		n.wg.Add(1)
		go n.work(ctx)
	})
}

// Stop ends the lookups and waits for them. The names found stay.
func (n *Names) Stop() {
	n.lifecycle.Do(func() {}) // a Start after Stop does nothing
	n.mu.Lock()
	cancel := n.cancel
	n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	n.wg.Wait()
}
