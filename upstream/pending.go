package upstream

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/miekg/dns"
)

// pending is a query written to one of an upstream's open connections
// and not answered yet. The selector makes a query's first attempt this
// way, in the query's own goroutine, and waits for the answer on ch
// together with its hedge timer: no goroutine, context or timer of the
// attempt's own.
type pending struct {
	u     *Upstream
	c     *conn
	id    uint16
	ch    chan result // the answer, or why there is none
	q     *dns.Msg
	start time.Time
}

// send writes q on one of u's open connections without waiting for a
// dial. It returns nil when u has no open connection or the one it took
// has just closed: the caller then runs Exchange, which dials and
// resends; nothing has been counted. An error is an attempt that failed
// (the context ended), counted as Exchange counts it.
func (u *Upstream) send(ctx context.Context, q *dns.Msg) (*pending, error) {
	if len(q.Question) != 1 || u.pool == nil {
		return nil, nil
	}
	c := u.pool.ready()
	if c == nil {
		return nil, nil
	}
	wire, err := packQuery(q)
	if err != nil {
		return nil, nil // Exchange reports it
	}
	p := &pending{u: u, c: c, ch: make(chan result, 1), q: q, start: time.Now()}
	if p.id, err = c.register(&call{q: q.Question[0], ch: p.ch}); err != nil {
		return nil, nil // closed: Exchange takes another
	}
	if err = c.write(ctx, wire, p.id); err != nil {
		c.unregister(p.id)
		if errors.Is(err, ErrConnClosed) && ctx.Err() == nil {
			return nil, nil
		}
		u.counters.queries.Add(1)
		return nil, p.failed(err)
	}
	u.counters.queries.Add(1)
	if u.log.Enabled(ctx, slog.LevelDebug) {
		u.log.DebugContext(ctx, "query sent", "qname", q.Question[0].Name,
			"qtype", dns.TypeToString[q.Question[0].Qtype], "tls", c.tlsVersion(), "size", len(wire))
	}
	return p, nil
}

// finish accounts for the result res read from p.ch, as Exchange does,
// and returns the answer or the error. resend says that the connection
// closed under the query, which another connection may still answer:
// Exchange then resends it, and the error is not counted against u.
func (p *pending) finish(ctx context.Context, res result) (r *dns.Msg, err error, resend bool) {
	u := p.u
	if res.err != nil {
		if errors.Is(res.err, ErrConnClosed) && ctx.Err() == nil {
			return nil, res.err, true
		}
		return nil, p.failed(res.err), false
	}
	dur := time.Since(p.start)
	u.succeed(dur, res.msg.Rcode)
	restore(res.msg, p.q)
	u.log.DebugContext(ctx, "answer received", "qname", p.q.Question[0].Name,
		"rcode", dns.RcodeToString[res.msg.Rcode], "dur", dur)
	return res.msg, nil, false
}

// abandon gives up on p for err (context.Canceled: another upstream
// answered first; context.DeadlineExceeded: the attempt timed out), as
// a cancelled Exchange does, and returns the attempt's error.
func (p *pending) abandon(err error) error {
	p.c.unregister(p.id)
	p.c.giveUp()
	return p.failed(err)
}

// failed counts p's failure for err and returns it, described.
func (p *pending) failed(err error) error {
	u := p.u
	return u.fail(p.start, u.exchangeError(err))
}
