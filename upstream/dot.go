package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/miekg/dns"
)

// exchange implements carrier for DNS over TLS: over one of the pool's
// pipelined connections, resent once on a fresh connection when a reused
// one turns out to be closed by the far end.
func (p *pool) exchange(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error) {
	var resent error // why the query had to be resent, once it was
	for {
		c, fresh, err := p.get(ctx)
		if err == nil {
			if p.log.Enabled(ctx, slog.LevelDebug) {
				p.log.DebugContext(ctx, "query sent", "qname", q.Name,
					"qtype", dns.TypeToString[q.Qtype], "tls", c.tlsVersion(), "size", len(wire))
			}
			var r *dns.Msg
			if r, err = c.exchange(ctx, wire, q); err == nil {
				return r, nil
			}
			if errors.Is(err, ErrConnClosed) && !fresh && resent == nil && ctx.Err() == nil {
				resent = err
				continue
			}
		}
		if resent != nil {
			// Both matter: the connection closed under the query, and the
			// resend failed too (the resolver is gone, say).
			err = fmt.Errorf("%w; resending: %w", resent, err)
		}
		return nil, err
	}
}
