package resolver

import "context"

// Info is what happened to one client query on its way through the
// chain, for the metrics and the query log: which upstream answered,
// whether the cache or the filter did instead. The listener makes one per
// query with WithInfo; each layer records its part with the setters,
// which do nothing on a nil *Info (no listener asked, or a query dotproxy
// makes itself).
//
// Info is not safe for concurrent use. Only the goroutine resolving the
// query writes it, before its Resolve returns; the listener reads it
// after. A layer that does work in other goroutines (hedged attempts,
// queries shared by several clients, background refreshes) gives that
// work no Info of the client's, or an Info of its own, and copies what it
// learns into the client's Info in the client's goroutine: such work may
// outlive the client's Resolve.
type Info struct {
	// Upstream names the upstream whose answer was returned; empty when
	// none was (cache hit, blocked, local, failure).
	Upstream string
	// Cached: the answer came from the cache (a fresh entry, a stale one
	// or a remembered failure).
	Cached bool
	// Stale: the answer was an expired cache entry (RFC 8767).
	Stale bool
	// Blocked names the list that blocked the query; empty when not
	// blocked. It never holds a URL's query string or user information.
	Blocked string
	// Local: the filter answered from local records or a locally
	// served zone.
	Local bool
}

// SetUpstream records that the answer came from the named upstream.
func (i *Info) SetUpstream(name string) {
	if i != nil {
		i.Upstream = name
	}
}

// SetCached records that the answer came from the cache, stale or not.
func (i *Info) SetCached(stale bool) {
	if i != nil {
		i.Cached, i.Stale = true, stale
	}
}

// SetBlocked records that list blocked the query.
func (i *Info) SetBlocked(list string) {
	if i != nil {
		i.Blocked = list
	}
}

// SetLocal records that the query was answered locally.
func (i *Info) SetLocal() {
	if i != nil {
		i.Local = true
	}
}

// infoKey is the context key of the Info; unexported so that only
// WithInfo and InfoFrom use it.
type infoKey struct{}

// infoCtx carries an Info in the same allocation as the context node
// that holds it: WithInfo runs once per client query, and
// context.WithValue plus a separate Info would be two allocations.
type infoCtx struct {
	context.Context
	info Info
}

// Value implements context.Context.
func (c *infoCtx) Value(key any) any {
	if key == (infoKey{}) {
		return &c.info
	}
	return c.Context.Value(key)
}

// WithInfo returns a copy of ctx that carries a new, empty Info, and that
// Info. An Info already in ctx is hidden: work detached from a client's
// query calls WithInfo to get one of its own.
func WithInfo(ctx context.Context) (context.Context, *Info) {
	c := &infoCtx{Context: ctx}
	return c, &c.info
}

// InfoFrom returns the Info that WithInfo put in ctx, or nil when there
// is none; the setters accept nil.
func InfoFrom(ctx context.Context) *Info {
	i, _ := ctx.Value(infoKey{}).(*Info)
	return i
}
