package upstream

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// flight sends identical queries that are in flight together upstream
// once (RFC 5452 §5: a burst of duplicates invites spoofing and wastes the
// resolvers); every caller gets its own copy of the answer.
//
// Its coalescing rule is the cache's too (cache's flight): a joiner gets
// the flight's outcome, answer or failure, unless the flight ended only
// because its leader's time ran out (a context's deadline or
// cancellation) while the joiner still has time: then the joiner runs
// the query anew rather than fail with a deadline that was not its own.
type flight struct {
	mu    sync.Mutex
	calls map[flightKey]*flightCall
}

// flightKey is what makes two queries the same question asked the same
// way: the name case-folded, type, class and the flags that change the
// answer.
type flightKey struct {
	name         string
	qtype, class uint16
	do, cd, rd   bool
}

// resolveFunc resolves q, recording in info the upstream that answered.
type resolveFunc func(ctx context.Context, q *dns.Msg, info *resolver.Info) (*dns.Msg, error)

type flightCall struct {
	done    chan struct{}
	joiners int // callers waiting on this flight; under flight.mu
	r       *dns.Msg
	err     error
	up      string // the upstream that answered, as the first caller's run recorded it
}

func keyOf(q *dns.Msg) flightKey {
	k := flightKey{
		name:  strings.ToLower(q.Question[0].Name),
		qtype: q.Question[0].Qtype,
		class: q.Question[0].Qclass,
		cd:    q.CheckingDisabled,
		rd:    q.RecursionDesired,
	}
	if opt := q.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

// do runs fn once for all identical queries in flight. The first caller
// runs it itself, in its own goroutine and context (no goroutine, timer or
// copy of its own on the common path, where nobody joins); callers that
// join wait for its result and get copies. If the first caller gives up
// (its context ends) while a joiner still has time, the joiner runs the
// query anew rather than fail with it. fn records in the Info it is given
// the upstream that answered; each caller gets it in its own info.
func (f *flight) do(ctx context.Context, q *dns.Msg, info *resolver.Info, fn resolveFunc) (*dns.Msg, error) {
	k := keyOf(q)
	for {
		f.mu.Lock()
		if f.calls == nil {
			f.calls = make(map[flightKey]*flightCall)
		}
		c, joined := f.calls[k]
		if joined {
			c.joiners++
		} else {
			c = &flightCall{done: make(chan struct{})}
			f.calls[k] = c
		}
		f.mu.Unlock()

		if !joined {
			return f.lead(ctx, k, c, q, info, fn)
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if c.err != nil && ctx.Err() == nil &&
			(errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
			continue // the first caller's time ran out, not ours
		}
		if c.err != nil {
			return nil, c.err
		}
		info.SetUpstream(c.up)
		r := c.r.Copy()
		r.Id = q.Id
		r.Question = []dns.Question{q.Question[0]}
		return r, nil
	}
}

// lead runs fn for the flight c and hands its result to the joiners,
// keeping the answer they copy apart from the one it returns.
func (f *flight) lead(ctx context.Context, k flightKey, c *flightCall, q *dns.Msg, info *resolver.Info, fn resolveFunc) (*dns.Msg, error) {
	if info == nil {
		info = new(resolver.Info) // the joiners want to know
	}
	ended := false
	defer func() {
		if !ended { // fn panicked: the flight ends all the same
			f.end(k, c, nil, errPanicked, "")
		}
	}()
	r, err := fn(ctx, q, info)
	joiners := f.end(k, c, r, err, info.Upstream)
	ended = true
	if err == nil && joiners > 0 {
		r = r.Copy() // c.r stays as it is while the joiners copy it
	}
	return r, err
}

// end ends the flight c of key k with its outcome, wakes its joiners and
// returns how many there are. A query that starts after this starts a
// flight of its own.
func (f *flight) end(k flightKey, c *flightCall, r *dns.Msg, err error, up string) int {
	f.mu.Lock()
	delete(f.calls, k)
	joiners := c.joiners
	c.r, c.err, c.up = r, err, up
	f.mu.Unlock()
	close(c.done)
	return joiners
}
