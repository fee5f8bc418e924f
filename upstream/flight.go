package upstream

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// flight sends identical queries that are in flight together upstream
// once (RFC 5452 §5: a burst of duplicates invites spoofing and wastes the
// resolvers); every caller gets its own copy of the answer.
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

type flightCall struct {
	done chan struct{}
	r    *dns.Msg
	err  error
	up   string // the upstream that answered, from the run's own resolver.Info
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

// do runs fn once for all identical queries in flight. The shared run
// gets a context of its own, detached from the first caller's
// cancellation but bounded by its deadline, so one client giving up does
// not fail the others. It also gets a resolver.Info of its own, since it
// may outlive the first caller: each caller copies the upstream recorded
// there into its own Info, in its own goroutine.
func (f *flight) do(ctx context.Context, q *dns.Msg, fn func(context.Context, *dns.Msg) (*dns.Msg, error)) (*dns.Msg, error) {
	k := keyOf(q)
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[flightKey]*flightCall)
	}
	c, joined := f.calls[k]
	if !joined {
		c = &flightCall{done: make(chan struct{})}
		f.calls[k] = c
	}
	f.mu.Unlock()

	if !joined {
		fctx, cancel := detach(ctx)
		fctx, info := resolver.WithInfo(fctx)
		// The run may outlive this caller, who owns q again once do
		// returns.
		q := q.Copy()
		go func() {
			defer cancel()
			c.r, c.err = fn(fctx, q)
			c.up = info.Upstream
			f.mu.Lock()
			delete(f.calls, k)
			f.mu.Unlock()
			close(c.done)
		}()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.err != nil {
		return nil, c.err
	}
	resolver.InfoFrom(ctx).SetUpstream(c.up)
	r := c.r.Copy()
	r.Id = q.Id
	r.Question = []dns.Question{q.Question[0]}
	return r, nil
}

func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(base, d)
	}
	return context.WithTimeout(base, 4*time.Second)
}
