package upstream

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/miekg/dns"
)

// exchange implements carrier for DNS over TLS: over one of the pool's
// pipelined connections, resent once on a fresh connection when a reused
// one turns out to be closed by the far end.
func (p *pool) exchange(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error) {
	return resendOnce(ctx, p.get, func(c *conn) (*dns.Msg, error) {
		if p.log.Enabled(ctx, slog.LevelDebug) {
			p.log.DebugContext(ctx, "query sent", "qname", q.Name,
				"qtype", dns.TypeToString[q.Qtype], "tls", c.tlsVersion(), "size", len(wire))
		}
		return c.exchange(ctx, wire, q)
	})
}

// send implements sender.
func (p *pool) send(ctx context.Context, m *dns.Msg) (inflight, error) {
	c, ok := p.ready()
	if !ok {
		return nil, nil
	}
	// The connection's queue takes a copy: the query is packed into a
	// buffer the next query reuses.
	buf := queryBufs.Get().(*[]byte)
	defer queryBufs.Put(buf)
	wire, err := appendQuery((*buf)[:0], m)
	*buf = wire
	if err != nil {
		return nil, nil // Exchange reports it
	}
	q := m.Question[0]
	f := &dotFlight{c: c, call: call{q: q, ch: make(chan result, 1)}}
	if f.id, err = c.register(&f.call); err != nil {
		return nil, nil // closed: exchange takes another
	}
	if err = c.write(ctx, wire, f.id); err != nil {
		c.unregister(f.id)
		if errors.Is(err, ErrConnClosed) && ctx.Err() == nil {
			return nil, nil
		}
		return nil, err
	}
	if p.log.Enabled(ctx, slog.LevelDebug) {
		p.log.DebugContext(ctx, "query sent", "qname", q.Name,
			"qtype", dns.TypeToString[q.Qtype], "tls", c.tlsVersion(), "size", len(wire))
	}
	return f, nil
}

// dotFlight is a query on a DoT connection: the reader matches its
// answer by ID and question and sends it on call.ch.
type dotFlight struct {
	c *conn
	call
	id uint16
}

func (f *dotFlight) answer() <-chan result    { return f.ch }
func (f *dotFlight) finish(res result) result { return res }
func (f *dotFlight) abandon() {
	f.c.unregister(f.id)
	f.c.giveUp()
}

// queryBufs hold the buffers DoT's send packs queries into.
var queryBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2*paddingBlock); return &b }}
