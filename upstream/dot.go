package upstream

import (
	"context"
	"log/slog"

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
