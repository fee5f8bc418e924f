// Package resolver defines the one interface every dotproxy component
// speaks: a Request in, a Response out, with a context. The listener
// parses each client query once into a Request and calls a Resolver; the
// filter and the cache are Middleware wrapping the upstream selector, the
// way net/http middleware wraps a handler.
//
// It owns the interface, the Request and Response types, the per-query
// record (Info) and the event the metrics and the query log consume, and
// the error type that carries an Extended DNS Error (RFC 8914) to the
// listener. It does not resolve anything itself.
package resolver

import (
	"context"
	"errors"
)

// Resolver answers one DNS query.
//
// The Request is the caller's: an implementation reads it, records what
// it did in req.Info, and never keeps it (or its Wire) past its return. The
// Response belongs to the caller, who may modify its message. On failure
// Resolve returns a zero Response and an error; the caller turns it into
// SERVFAIL, with the Extended DNS Error that an *Error in the chain
// carries.
//
// The context carries the query's deadline: an implementation stops
// work, and returns, when it is done. When req.Inline is set, an
// implementation that would have to wait (for an upstream, for a query
// another client started) returns ErrWouldWait at once instead, having
// counted and recorded nothing.
type Resolver interface {
	Resolve(ctx context.Context, req *Request) (Response, error)
}

// ErrWouldWait is what a Resolver returns for an Inline request it
// cannot answer without waiting. The listener then resolves the same
// Request again, not inline, in a goroutine that may wait.
var ErrWouldWait = errors.New("resolver: the answer needs a wait")

// Func adapts an ordinary function to the Resolver interface.
type Func func(ctx context.Context, req *Request) (Response, error)

// Resolve calls f(ctx, req).
func (f Func) Resolve(ctx context.Context, req *Request) (Response, error) { return f(ctx, req) }

var _ Resolver = Func(nil)

// Middleware wraps a Resolver with another that adds one capability
// (a cache, a filter) and calls next for the rest.
type Middleware func(next Resolver) Resolver

// Chain wraps r in the given middleware. The first one listed is the
// outermost, the one a query meets first.
func Chain(r Resolver, mw ...Middleware) Resolver {
	for i := len(mw) - 1; i >= 0; i-- {
		r = mw[i](r)
	}
	return r
}
