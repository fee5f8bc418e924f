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

// Resolve answers q from the cache when it can, and from next otherwise.
// It records in the context's resolver.Info an answer from the cache, or
// the upstream that answered a miss.
func (r *cached) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if !cacheable(q) {
		return r.next.Resolve(ctx, q)
	}
	c := r.c
	k := keyOf(q)
	h := k.hash(c.store.seed)
	res := c.lookup(&k, h, c.opts.Now())
	switch res.outcome {
	case hit:
		if res.refresh != nil {
			c.prefetch(r.next, res.refresh)
		}
		c.logQuery(ctx, "cache hit", q)
		resolver.InfoFrom(ctx).SetCached(false)
		return res.fresh.render(q, &k, res.age, false), nil
	case failing:
		if res.stale != nil {
			return c.serveStale(ctx, q, &k, res.stale), nil
		}
		c.logQuery(ctx, "cache hit, failure", q)
		resolver.InfoFrom(ctx).SetCached(false)
		if res.fail.err != nil {
			return nil, res.fail.err
		}
		return res.fail.answer.render(q, &k, 0, false), nil
	}
	c.logQuery(ctx, "cache miss", q)
	if !q.RecursionDesired {
		// RD=0 asks for what is cached only; what an upstream answers to
		// it (a referral, REFUSED) is not an answer to keep.
		return r.next.Resolve(ctx, q)
	}
	return c.miss(ctx, r.next, q, &k, h, res.stale)
}

// cacheable reports whether q is a query the cache may answer: one
// question, a standard query, not signed (a TSIG answer is for its
// client alone).
func cacheable(q *dns.Msg) bool {
	return len(q.Question) == 1 && q.Opcode == dns.OpcodeQuery && !q.Response && q.IsTsig() == nil
}

// miss waits for the upstream query of k, run by the first of the misses
// that wait on it, and answers q from it. When there is a stale answer,
// the query runs in the background and the stale answer is served
// instead if the query fails or has not answered within StaleAfter; the
// query goes on and refreshes the entry.
func (c *Cache) miss(ctx context.Context, next resolver.Resolver, q *dns.Msg, k *key, h uint64, stale *answer) (*dns.Msg, error) {
	f, leader := c.join(k, h)
	_, bounded := ctx.Deadline()
	switch {
	case leader && stale == nil && bounded:
		// Nothing to serve meanwhile: the first miss runs the query
		// itself, bound by its own deadline as a background run would
		// be (no goroutine, context or timer of its own). Misses that
		// join get its outcome.
		c.run(ctx, next, f)
	case leader:
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(refreshTimeout)
		}
		c.start(ctx, next, f, deadline)
	}
	var slow <-chan time.Time
	if stale != nil {
		t := time.NewTimer(c.opts.StaleAfter)
		defer t.Stop()
		slow = t.C
	}
	select {
	case <-f.done:
	case <-slow:
		return c.serveStale(ctx, q, k, stale), nil
	case <-c.ctx.Done():
		// Closed under a miss that waits on another's query: the
		// listener is gone, and so is whoever would read the answer.
		select {
		case <-f.done:
		default:
			return nil, errClosed
		}
	case <-ctx.Done():
		if stale != nil {
			return c.serveStale(ctx, q, k, stale), nil
		}
		return nil, &resolver.Error{Code: dns.ExtendedErrorCodeNoReachableAuthority,
			Text: "no upstream answered in time", Err: ctx.Err()}
	}
	if f.failed && stale != nil {
		return c.serveStale(ctx, q, k, stale), nil
	}
	if f.expired() && ctx.Err() == nil && c.ctx.Err() == nil {
		return c.miss(ctx, next, q, k, h, stale) // the leader's time ran out, not ours (see flight)
	}
	resolver.InfoFrom(ctx).SetUpstream(f.upstream)
	return f.respond(q, k)
}

// serveStale answers q with the expired answer a (RFC 8767): TTL 30 and
// Extended DNS Error 3, Stale Answer (19, Stale NXDOMAIN Answer, for an
// NXDOMAIN). The EDE goes only to a client that sent EDNS.
func (c *Cache) serveStale(ctx context.Context, q *dns.Msg, k *key, a *answer) *dns.Msg {
	c.stale.Add(1)
	c.logQuery(ctx, "cache stale", q)
	resolver.InfoFrom(ctx).SetCached(true)
	m := a.render(q, k, 0, true)
	code := dns.ExtendedErrorCodeStaleAnswer
	if a.rcode == dns.RcodeNameError {
		code = dns.ExtendedErrorCodeStaleNXDOMAINAnswer
	}
	resolver.SetEDE(m, q, code, "")
	return m
}

// logQuery logs one query's fate at Debug, building nothing when Debug
// is off: the hit path is hot.
func (c *Cache) logQuery(ctx context.Context, msg string, q *dns.Msg) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	c.log.DebugContext(ctx, msg, "qname", q.Question[0].Name, "qtype", dns.Type(q.Question[0].Qtype).String())
}
