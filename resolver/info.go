package resolver

// Info is what happened to one query on its way through the chain, for
// the metrics and the query log: which upstream answered, whether the
// cache or the filter did instead. It lives in the query's Request; each
// layer records its part with the setters, which also accept a nil
// *Info.
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
	// Rebind: rebinding protection refused the public upstream's answer,
	// which pointed into the private network.
	Rebind bool
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

// SetRebind records that rebinding protection refused the answer.
func (i *Info) SetRebind() {
	if i != nil {
		i.Rebind = true
	}
}
