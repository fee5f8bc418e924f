package filter

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// returnMemoryAbove is the size of a replaced version above which the
// filter hands its memory back to the OS at once (debug.FreeOSMemory, a
// forced GC, in the refresh goroutine) rather than leave it to the
// runtime's background scavenger, which keeps up to twice the live heap:
// a router's memory is small, and a refresh comes once a day.
const returnMemoryAbove = 16 << 20

// list is one configured blocklist or allowlist: where it comes from,
// the version in use, and how loading it went. Queries read only table
// and add to blocked; loading a new version swaps table whole, so a query
// sees one version or the other and never waits for a load.
type list struct {
	source string
	name   string // ListName(source): what may be shown
	allow  bool   // an allowlist: every rule in it is an exception
	isURL  bool   // fetched over HTTP(S), else read from a file
	cache  string // the on-disk last good copy; "" when there is none

	table   atomic.Pointer[table]
	blocked atomic.Uint64

	// loadMu serializes loads of this list (New, the refresh loop,
	// tests), and guards the HTTP validators of the version in use.
	loadMu       sync.Mutex
	etag         string
	lastModified string

	mu     sync.Mutex // guards status
	status listStatus
}

// listStatus is what Stats reports about a list, apart from counters.
type listStatus struct {
	rules, malformed int
	loadedAt         time.Time
	fromCache        bool
	lastAttempt      time.Time
	lastErr          error
	failures         uint64
}

// load fetches or reads the list and, when it parses, makes it the
// version in use; otherwise the version in use stays. From the cache it
// reads the on-disk copy instead of the source.
func (l *list) load(ctx context.Context, f *Filter, fromCache bool) error {
	l.loadMu.Lock()
	defer l.loadMu.Unlock()
	return l.loadLocked(ctx, f, fromCache)
}

// tryLoad is load unless a load of l is under way (the running filter's,
// which may be waiting on the network): then it reports false at once,
// and l is left to that load.
func (l *list) tryLoad(ctx context.Context, f *Filter, fromCache bool) (bool, error) {
	if !l.loadMu.TryLock() {
		return false, nil
	}
	defer l.loadMu.Unlock()
	return true, l.loadLocked(ctx, f, fromCache)
}

// loadLocked is load; the caller holds l.loadMu.
func (l *list) loadLocked(ctx context.Context, f *Filter, fromCache bool) error {
	start := time.Now()
	var (
		p   *parsed
		v   validators
		err error
	)
	if fromCache {
		p, err = parseFile(l.cache, l.allow)
	} else {
		p, v, err = l.fetch(ctx, f)
	}
	if errors.Is(err, errNotModified) {
		l.setStatus(func(s *listStatus) {
			s.lastAttempt, s.lastErr, s.fromCache = start, nil, false
		})
		f.log.Debug("list not modified", "list", ListName(l.source))
		return nil
	}
	if err != nil && ctx.Err() != nil {
		// Abandoned (Stop, a reload retiring the filter), not failed: a
		// list two filters share keeps the status the other one gives it.
		return err
	}
	if err != nil {
		l.setStatus(func(s *listStatus) { s.lastAttempt, s.lastErr = start, err; s.failures++ })
		return err
	}
	old := l.table.Swap(p.table)
	if !fromCache {
		l.etag, l.lastModified = v.etag, v.lastModified
	}
	l.setStatus(func(s *listStatus) {
		s.rules, s.malformed = p.table.names, p.malformed
		s.loadedAt, s.lastAttempt, s.lastErr, s.fromCache = start, start, nil, fromCache
	})
	f.log.Info("list loaded", "list", ListName(l.source), "allowlist", l.allow, "rules", p.table.names,
		"from_cache", fromCache, "dur", time.Since(start).Round(time.Millisecond))
	if p.malformed > 0 {
		f.log.Warn("list has malformed lines, skipped them", "list", ListName(l.source),
			"malformed", p.malformed, "of", p.lines, "first", p.samples)
	}
	if old != nil && old.bytes() >= returnMemoryAbove {
		debug.FreeOSMemory()
	}
	return nil
}

func (l *list) setStatus(update func(*listStatus)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	update(&l.status)
}

// stats returns the list's part of Stats.
func (l *list) stats() ListStats {
	l.mu.Lock()
	s := l.status
	l.mu.Unlock()
	ls := ListStats{
		Source:      l.source,
		Name:        l.name,
		Allow:       l.allow,
		Rules:       s.rules,
		Malformed:   s.malformed,
		Blocked:     l.blocked.Load(),
		LoadedAt:    s.loadedAt,
		FromCache:   s.fromCache,
		LastAttempt: s.lastAttempt,
		Failures:    s.failures,
		Pending:     l.table.Load() == nil,
	}
	if s.lastErr != nil {
		ls.LastError = s.lastErr.Error()
	}
	return ls
}
