package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

const (
	// maxBackground bounds the prefetches running at once: a burst of
	// popular names expiring together must not become a burst upstream.
	maxBackground = 16
	// refreshTimeout bounds a prefetch, and a miss whose client set no
	// deadline: the listener's query timeout.
	refreshTimeout = 4 * time.Second
)

var (
	errNoResponse = errors.New("cache: resolver returned no response and no error")
	errClosed     = errors.New("cache: closed")
	errPanicked   = errors.New("cache: the upstream query panicked")
)

// flight is one upstream query the cache runs for a key, shared by every
// miss on that key while it runs (and by nobody, for a prefetch that no
// miss joins). It runs on a context of the cache's, bounded by the first
// client's deadline, so that a client giving up does not fail the others
// nor lose the answer for the cache.
//
// Coalescing follows the rule the upstream package's flight follows too:
// a waiter gets the flight's outcome, answer or failure, unless the
// flight ended only because its leader's time ran out (a context's
// deadline or cancellation, see expired) while the waiter still has
// time: then the waiter runs the query anew rather than fail with a
// deadline that was not its own.
type flight struct {
	key      key // name folded
	hash     uint64
	prefetch bool
	waiters  int // misses that joined; guarded by the shard's mu

	// done is closed when the flight has settled. Made (under the
	// shard's mu) only for someone who will wait on it: a miss that
	// joins, or a leader that does not run the query itself. The usual
	// miss, alone on its key, runs it and needs none.
	done chan struct{}
	// Set before the flight settles, read-only after.
	resp     *dns.Msg // the response, when there is one
	err      error
	answer   stored // resp as stored, when it was cacheable (ok)
	failed   bool   // an error, SERVFAIL or REFUSED: a stale answer is better
	upstream string // the upstream that answered, from the query's own resolver.Info
}

func newFlight(k key, h uint64, prefetch bool) *flight {
	return &flight{key: k, hash: h, prefetch: prefetch}
}

// join returns the flight for k that a miss should wait on, and whether
// the caller must start it. A miss that joins waits on the flight's
// done; so does the caller that starts it when leaderWaits.
func (c *Cache) join(k *key, h uint64, leaderWaits bool) (f *flight, leader bool) {
	sh := c.store.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if f := sh.flights[h]; f != nil && f.key.matches(k) {
		f.waiters++
		if f.done == nil {
			f.done = make(chan struct{})
		}
		return f, false
	}
	f = newFlight(k.folded(), h, false)
	f.waiters = 1
	if leaderWaits {
		f.done = make(chan struct{})
	}
	if sh.flights[h] == nil {
		// Otherwise another key's flight holds the slot (a collision):
		// this one runs on its own.
		sh.flights[h] = f
	}
	return f, true
}

// start runs f in the background against next, with a context that the
// cache's Close cancels and that ends at deadline. After Close it runs f
// at once, in the caller, bounded by ctx.
func (c *Cache) start(ctx context.Context, next resolver.Resolver, f *flight, deadline time.Time) {
	c.closeMu.RLock()
	if c.closed {
		c.closeMu.RUnlock()
		c.run(ctx, next, f)
		return
	}
	c.bg.wg.Add(1)
	c.closeMu.RUnlock()
	go func() {
		defer c.bg.wg.Done()
		ctx, cancel := context.WithDeadline(c.ctx, deadline)
		defer cancel()
		c.run(ctx, next, f)
	}()
}

// prefetch runs the refresh f, registered by a hit, in the background.
func (c *Cache) prefetch(next resolver.Resolver, f *flight) {
	c.closeMu.RLock()
	if c.closed {
		c.closeMu.RUnlock()
		<-c.bg.slots
		c.settle(f, nil, errClosed)
		return
	}
	c.bg.wg.Add(1)
	c.closeMu.RUnlock()
	c.prefetches.Add(1)
	go func() {
		defer c.bg.wg.Done()
		defer func() { <-c.bg.slots }()
		ctx, cancel := context.WithTimeout(c.ctx, refreshTimeout)
		defer cancel()
		c.run(ctx, next, f)
	}()
}

// run asks next the cache's own query for f's key: the question, RD, and
// EDNS with the key's DO bit and no option of any client's. It is a
// Request of the cache's own, never a client's: it may outlive every
// client waiting on it. The waiters copy the upstream from f.
//
// A panic under next still settles f, with errPanicked, before it goes
// on up: unsettled, f would hold its key, and every later miss on it
// would wait on a query that never ends.
func (c *Cache) run(ctx context.Context, next resolver.Resolver, f *flight) {
	settled := false
	defer func() {
		if !settled {
			c.settle(f, nil, errPanicked)
		}
	}()
	o := ownQueries.Get().(*ownQuery)
	req := o.fill(&f.key)
	resp, err := next.Resolve(ctx, req)
	f.upstream = req.Info.Upstream
	// next has let go of req and its message (resolver.Resolver's
	// contract): the next miss may use them. After a panic they are not
	// given back: something may still hold them.
	ownQueries.Put(o)
	var m *dns.Msg
	if err == nil {
		m, err = resp.Unpack()
	}
	if err == nil && m == nil {
		err = errNoResponse
	}
	c.settle(f, m, err)
	settled = true
}

// settle stores what f's upstream query brought, ends f and wakes its
// waiters. A good answer replaces the entry; one that must not be cached
// removes it; a failure is remembered for ServfailTTL beside any answer
// the entry still has (for serve-stale), except after a prefetch, whose
// entry is still fresh.
func (c *Cache) settle(f *flight, resp *dns.Msg, err error) {
	now := c.opts.Now()
	f.resp, f.err = resp, err
	var fail *failed
	switch {
	case err != nil:
		f.failed = true
		fail = &failed{err: err}
	case resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused:
		// The selector returns these only when every upstream did.
		f.failed = true
		fail = &failed{answer: failure(resp)}
	default:
		f.answer = c.ttls.prepare(&f.key, resp)
	}
	// A query cancelled (the listener shutting down under a miss that
	// ran it), or one that panicked, says nothing about the name.
	remember := fail != nil && !f.prefetch && c.opts.ServfailTTL > 0 && c.ctx.Err() == nil &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, errPanicked)

	sh := c.store.shard(f.hash)
	sh.mu.Lock()
	if sh.flights[f.hash] == f {
		delete(sh.flights, f.hash)
	}
	done := f.done // whoever waits has made it by now: f is out of the map
	switch {
	case f.answer.ok() && c.ctx.Err() == nil:
		i := sh.entryFor(&f.key, f.hash, f.answer.blob)
		// The flight's waiters answer from f.answer too: it is never
		// changed once built.
		sh.setAnswer(i, f.answer, c.mono(now))
		sh.resize(i)
	case remember:
		i := sh.entryFor(&f.key, f.hash, nil)
		fail.until = c.mono(now.Add(c.opts.ServfailTTL))
		sh.setFailure(i, fail)
		sh.resize(i)
	case !f.failed:
		// An answer, but not one to keep (TTL 0, truncated, negative
		// without SOA): whatever the entry held is out of date.
		if i := sh.find(&f.key, f.hash); i != 0 {
			sh.remove(i)
		}
	}
	sh.mu.Unlock()
	if done != nil {
		close(done)
	}
}

// expired reports whether f ended only because the time it ran on ran
// out (its leader's deadline, or a cancellation), not with an answer or
// an upstream's failure. A waiter with time left runs the query anew.
func (f *flight) expired() bool {
	return errors.Is(f.err, context.DeadlineExceeded) || errors.Is(f.err, context.Canceled)
}

// respond builds a waiter's response to q (key k) from f's outcome. The
// caller has checked f.failed and has no stale answer to serve instead.
func (f *flight) respond(q *resolver.Request, k *key) (resolver.Response, error) {
	if f.answer.ok() {
		a := f.answer.view()
		return a.response(q, k, 0), nil
	}
	if f.err != nil {
		return resolver.Response{}, f.err
	}
	m := f.resp.Copy()
	m.Id = q.ID
	m.Question = []dns.Question{q.Question()}
	return resolver.Response{Msg: m}, nil
}

// ownQuery is the cache's query for one key: the Request and the message
// it carries, taken from ownQueries for the time of one upstream query.
type ownQuery struct {
	req      resolver.Request
	msg      dns.Msg
	question [1]dns.Question
	extra    [1]dns.RR
	opt      dns.OPT
}

// fill makes o the query the cache sends for k and returns its Request:
// the cache's own, never a client's, so that nothing a client put in its
// query (EDNS options, odd flags) shapes an answer that others will get.
// It is Coalesced: the flight asking it is the only one for k.
func (o *ownQuery) fill(k *key) *resolver.Request {
	q := &o.msg
	*q = dns.Msg{}
	// ID 0: the upstream connection writes a random one of its own, and
	// dns.Id would cost a getrandom(2) per miss.
	q.RecursionDesired = true
	// RFC 6840 §5.7: ask for AD, so that it is there for the clients
	// that want it; render keeps it from those that do not.
	q.AuthenticatedData = true
	q.CheckingDisabled = k.cd
	o.question[0] = dns.Question{Name: k.name, Qtype: k.qtype, Qclass: k.qclass}
	q.Question = o.question[:]
	o.opt = dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.opt.SetUDPSize(ednsUDPSize)
	o.opt.SetDo(k.do)
	o.extra[0] = &o.opt
	q.Extra = o.extra[:]
	o.req = resolver.Request{Name: k.name, Qtype: k.qtype, Qclass: k.qclass, RD: true, AD: true, CD: k.cd,
		EDNS: true, DO: k.do, Limit: dns.MaxMsgSize, Coalesced: true}
	o.req.SetMsg(q)
	return &o.req
}

// ownQueries hold the cache's queries between misses: a miss would
// otherwise allocate (and the collector clear) one each.
var ownQueries = sync.Pool{New: func() any { return new(ownQuery) }}
