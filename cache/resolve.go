package cache

import (
	"context"
	"log/slog"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// cached is the Resolver that Wrap puts in front of next.
type cached struct {
	c    *Cache
	next resolver.Resolver
}

var _ resolver.Resolver = (*cached)(nil)

// Resolve answers req from the cache when it can, and from next
// otherwise. It records in req.Info an answer from the cache, or the
// upstream that answered a miss. An Inline request is answered when the
// cache holds what it needs (a fresh answer, a remembered failure); a
// miss returns resolver.ErrWouldWait having changed and counted nothing,
// so that the same request's lookup in a goroutine that may wait does it
// once.
func (r *cached) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	if !cacheable(req) {
		return r.next.Resolve(ctx, req)
	}
	c := r.c
	k := keyOf(req)
	h := k.hash(c.store.seed)
	res, ok := c.lookup(&k, h, c.opts.Now(), req.Inline)
	if !ok {
		return resolver.Response{}, resolver.ErrWouldWait
	}
	switch res.outcome {
	case hit:
		if res.refresh != nil {
			c.prefetch(r.next, res.refresh)
		}
		c.logQuery(ctx, "cache hit", req)
		req.Info.SetCached(false)
		a := res.fresh.view()
		return a.response(req, &k, res.age), nil
	case failing:
		if res.stale.ok() {
			stale := res.stale.view()
			return resolver.Response{Msg: c.serveStale(ctx, req, &k, &stale)}, nil
		}
		c.logQuery(ctx, "cache hit, failure", req)
		req.Info.SetCached(false)
		if res.fail.err != nil {
			return resolver.Response{}, res.fail.err
		}
		return resolver.Response{Msg: res.fail.answer.render(req, &k, 0, false)}, nil
	}
	c.logQuery(ctx, "cache miss", req)
	if !req.RD {
		// RD=0 asks for what is cached only; what an upstream answers to
		// it (a referral, REFUSED) is not an answer to keep.
		return r.next.Resolve(ctx, req)
	}
	var stale *answer
	if res.stale.ok() {
		a := res.stale.view()
		stale = &a
	}
	return c.miss(ctx, r.next, req, &k, h, stale)
}

// cacheable reports whether req is a query the cache may answer: not
// signed (a TSIG answer is for its client alone).
func cacheable(req *resolver.Request) bool { return !req.Signed }

// miss waits for the upstream query of k, run by the first of the misses
// that wait on it, and answers req from it. When there is a stale answer,
// the query runs in the background and the stale answer is served
// instead if the query fails or has not answered within StaleAfter; the
// query goes on and refreshes the entry.
func (c *Cache) miss(ctx context.Context, next resolver.Resolver, req *resolver.Request, k *key, h uint64, stale *answer) (resolver.Response, error) {
	_, bounded := ctx.Deadline()
	// With nothing to serve meanwhile, the first miss runs the query
	// itself, bound by its own deadline as a background run would be (no
	// goroutine, context or timer of its own), and has nothing to wait
	// for once it returns. Misses that join get its outcome.
	runs := stale == nil && bounded
	f, leader := c.join(k, h, !runs)
	if leader && runs {
		c.run(ctx, next, f)
	} else {
		if leader {
			deadline, ok := ctx.Deadline()
			if !ok {
				deadline = time.Now().Add(refreshTimeout)
			}
			c.start(ctx, next, f, deadline)
		}
		if resp, settled, err := c.await(ctx, req, k, f, stale); !settled {
			return resp, err
		}
	}
	if f.failed && stale != nil {
		return resolver.Response{Msg: c.serveStale(ctx, req, k, stale)}, nil
	}
	if f.expired() && ctx.Err() == nil && c.ctx.Err() == nil {
		return c.miss(ctx, next, req, k, h, stale) // the leader's time ran out, not ours (see flight)
	}
	req.Info.SetUpstream(f.upstream)
	return f.respond(req, k)
}

// await waits for f to settle and reports true when it has; otherwise
// it answers req itself: stale when there is a stale answer and f is
// slow, or with why the wait ended (the query's deadline, Close).
func (c *Cache) await(ctx context.Context, req *resolver.Request, k *key, f *flight, stale *answer) (resolver.Response, bool, error) {
	var slow <-chan time.Time
	if stale != nil {
		t := time.NewTimer(c.opts.StaleAfter)
		defer t.Stop()
		slow = t.C
	}
	select {
	case <-f.done:
		return resolver.Response{}, true, nil
	case <-slow:
		return resolver.Response{Msg: c.serveStale(ctx, req, k, stale)}, false, nil
	case <-c.ctx.Done():
		// Closed under a miss that waits on another's query: the
		// listener is gone, and so is whoever would read the answer.
		select {
		case <-f.done:
			return resolver.Response{}, true, nil
		default:
			return resolver.Response{}, false, errClosed
		}
	case <-ctx.Done():
		if stale != nil {
			return resolver.Response{Msg: c.serveStale(ctx, req, k, stale)}, false, nil
		}
		return resolver.Response{}, false, &resolver.Error{Code: dns.ExtendedErrorCodeNoReachableAuthority,
			Text: "no upstream answered in time", Err: ctx.Err()}
	}
}

// serveStale answers req with the expired answer a (RFC 8767): TTL 30 and
// Extended DNS Error 3, Stale Answer (19, Stale NXDOMAIN Answer, for an
// NXDOMAIN). The EDE goes only to a client that sent EDNS.
func (c *Cache) serveStale(ctx context.Context, req *resolver.Request, k *key, a *answer) *dns.Msg {
	c.stale.Add(1)
	c.logQuery(ctx, "cache stale", req)
	req.Info.SetCached(true)
	m := a.render(req, k, 0, true)
	code := dns.ExtendedErrorCodeStaleAnswer
	if a.rcode == dns.RcodeNameError {
		code = dns.ExtendedErrorCodeStaleNXDOMAINAnswer
	}
	resolver.SetEDE(m, req, code, "")
	return m
}

// logQuery logs one query's fate at Debug, building nothing when Debug
// is off: the hit path is hot.
func (c *Cache) logQuery(ctx context.Context, msg string, req *resolver.Request) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	c.log.DebugContext(ctx, msg, "qname", req.Name, "qtype", dns.Type(req.Qtype).String())
}
