package upstream

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// pending is a query written to one of an upstream's open connections
// and not answered yet. The selector makes a query's first attempt this
// way, in the query's own goroutine, and waits for the answer on the
// inflight's channel together with its hedge timer: no goroutine, context
// or timer of the attempt's own.
type pending struct {
	u     *Upstream
	f     inflight
	q     *dns.Msg
	start time.Time
}

// sender is a carrier that can put a query on an open connection at
// once, without a dial: the DoT pool, DoH over HTTP/2.
type sender interface {
	// send packs q (packQuery) and writes it on an open connection,
	// packing only once it has one: without, it returns nil and no
	// error, as when the connection it took has just closed or q does
	// not pack, and the caller runs exchange, which dials, resends and
	// reports. It logs "query sent" as exchange does.
	send(ctx context.Context, q *dns.Msg) (inflight, error)
}

// inflight is a query a sender put on a connection.
type inflight interface {
	// answer brings the outcome, once: the answer checked against the
	// question (checkAnswer), or why there is none.
	answer() <-chan result
	// finish takes the outcome read from answer: the connection's
	// bookkeeping, errors described as exchange's are.
	finish(res result) result
	// abandon gives the query up unanswered.
	abandon()
}

// send writes q on one of u's open connections without waiting for a
// dial, and fills p (the caller's: a query's attempts keep it in their
// own frame) when it did. It reports false when u has no open connection
// or the one it took has just closed: the caller then runs Exchange,
// which dials and resends; nothing has been counted. An error is an
// attempt that failed (the context ended), counted as Exchange counts
// it.
func (u *Upstream) send(ctx context.Context, q *dns.Msg, p *pending) (bool, error) {
	if len(q.Question) != 1 || u.sender == nil {
		return false, nil
	}
	start := time.Now()
	f, err := u.sender.send(ctx, q)
	if f == nil && err == nil {
		return false, nil
	}
	u.counters.queries.Add(1)
	*p = pending{u: u, f: f, q: q, start: start}
	if err != nil {
		return false, p.failed(err)
	}
	return true, nil
}

// finish accounts for the result res read from p.ch, as Exchange does,
// and returns the answer or the error. resend says that the connection
// closed under the query, which another connection may still answer:
// Exchange then resends it, and the error is not counted against u.
func (p *pending) finish(ctx context.Context, res result) (r *dns.Msg, err error, resend bool) {
	u := p.u
	res = p.f.finish(res)
	if res.err != nil {
		if worthResending(res.err, false) && ctx.Err() == nil {
			return nil, res.err, true
		}
		return nil, p.failed(res.err), false
	}
	dur := time.Since(p.start)
	u.succeed(dur, res.msg.Rcode)
	restore(res.msg, p.q)
	u.logAnswer(ctx, p.q, res.msg.Rcode, dur)
	return res.msg, nil, false
}

// abandon gives up on p for err (context.Canceled: another upstream
// answered first; context.DeadlineExceeded: the attempt timed out), as
// a cancelled Exchange does, and returns the attempt's error.
func (p *pending) abandon(err error) error {
	p.f.abandon()
	return p.failed(err)
}

// failed counts p's failure for err and returns it, described.
func (p *pending) failed(err error) error {
	u := p.u
	return u.fail(p.start, u.exchangeError(err))
}
