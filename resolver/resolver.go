// Package resolver defines the one interface every dotproxy component
// speaks: a DNS query in, a response out, with a context. The listener
// calls a Resolver; the cache and the filter are Middleware wrapping the
// upstream selector, the way net/http middleware wraps a handler.
//
// It owns the interface, its adapters and the error type that carries an
// Extended DNS Error (RFC 8914) to the listener. It does not resolve
// anything itself.
package resolver

import (
	"context"

	"github.com/miekg/dns"
)

// Resolver answers one DNS query.
//
// The query is owned by the caller and must not be modified; an
// implementation that needs a changed copy makes one (q.Copy()). The
// returned response belongs to the caller, who may modify it. The
// response's ID and question echo the query's. On failure Resolve returns
// a nil response and an error; the caller turns it into SERVFAIL, with the
// Extended DNS Error that an *Error in the chain carries.
//
// The context carries the query's deadline: an implementation stops
// work, and returns, when it is done.
type Resolver interface {
	Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
}

// Func adapts an ordinary function to the Resolver interface.
type Func func(ctx context.Context, q *dns.Msg) (*dns.Msg, error)

// Resolve calls f(ctx, q).
func (f Func) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) { return f(ctx, q) }

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
