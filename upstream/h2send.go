package upstream

import (
	"context"
	"errors"
	"log/slog"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
)

// h2Carrier is the carrier of DoH over HTTP/2: doh, and a sender, so
// that the selector's first attempt goes out from the query's goroutine
// as over DoT.
type h2Carrier struct{ *doh }

var _ sender = h2Carrier{}

// send implements sender.
func (d h2Carrier) send(ctx context.Context, m *dns.Msg) (inflight, error) {
	c := d.pool.ready()
	if c == nil {
		return nil, nil
	}
	wire, err := packQuery(m)
	if err != nil {
		d.pool.release(c, false)
		return nil, nil // Exchange reports it
	}
	q := m.Question[0]
	f := &h2Flight{d: d.doh, c: c}
	err = c.conn.(*h2Conn).open(ctx, &f.st, wire, q, false)
	if errors.Is(err, errNotNow) {
		// The query would wait for a stream or for window: exchange
		// waits, in an attempt of its own that the selector hedges.
		d.pool.release(c, false)
		return nil, nil
	}
	if err != nil {
		broken, err := d.transportError(ctx, c, "sending query", err)
		d.pool.release(c, broken)
		if broken && errors.Is(err, ErrConnClosed) && ctx.Err() == nil {
			return nil, nil // exchange takes another connection
		}
		return nil, err
	}
	if d.log.Enabled(ctx, slog.LevelDebug) {
		d.log.DebugContext(ctx, "query sent", "qname", q.Name,
			"qtype", dns.TypeToString[q.Qtype], "http", d.proto, "size", len(wire))
	}
	return f, nil
}

// h2Flight is a query on an HTTP/2 stream; it holds its connection
// (the pool's load) until finished or abandoned. The stream is its own,
// not a pointer: one allocation a query.
type h2Flight struct {
	d  *doh
	c  *dohConn
	st h2Stream
}

func (f *h2Flight) answer() <-chan result { return f.st.ch }

func (f *h2Flight) finish(res result) result {
	broken := false
	if res.err != nil {
		// The stream ended on its own: no context of the caller's is
		// to blame.
		broken, res.err = f.d.transportError(context.Background(), f.c, "awaiting answer", res.err)
	}
	f.d.pool.release(f.c, broken)
	return res
}

func (f *h2Flight) abandon() {
	hc := f.c.conn.(*h2Conn)
	hc.cancel(&f.st, http2.ErrCodeCancel)
	hc.giveUp()
	f.d.pool.release(f.c, false)
}
