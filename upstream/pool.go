package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"
)

// pool is the DoT carrier's connections: up to max persistent ones to
// one upstream, the least loaded handed out (connSet).
type pool struct {
	connSet[*conn]
	ep          *endpoint
	tlsConf     *tls.Config
	idleTimeout time.Duration
	stallAfter  func() time.Duration
	log         *slog.Logger
}

// newPool returns the pool of a DoT upstream at ep, sized and timed by
// opts.
func newPool(opts Options, ep *endpoint, tlsConf *tls.Config, stallAfter func() time.Duration, log *slog.Logger) *pool {
	p := &pool{ep: ep, tlsConf: tlsConf, idleTimeout: opts.IdleTimeout, stallAfter: stallAfter, log: log}
	p.connSet = connSet[*conn]{max: opts.MaxConns, dialTimeout: opts.DialTimeout, handshake: p.handshake,
		discard: func(c *conn) { c.close(ErrConnClosed) }}
	return p
}

func (p *pool) handshake(ctx context.Context) (*conn, error) {
	addr, err := p.ep.addr(ctx)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", p.ep, &dialError{err})
	}
	tc, err := dialTLS(ctx, addr.String(), p.tlsConf)
	if err != nil {
		p.ep.failed(addr)
		return nil, fmt.Errorf("dialing %s: %w", addr, &dialError{err})
	}
	return newConn(tc, p.idleTimeout, p.stallAfter), nil
}

// closeAllTimeout bounds closeAll's wait for the connections' sockets
// to close: a close_notify each, all at once.
const closeAllTimeout = closeNotifyTimeout + 500*time.Millisecond

// closeAll closes every connection, all at once; queries on them fail at
// once. It returns when the sockets are closed, or after closeAllTimeout
// with those still saying close_notify dropped.
func (p *pool) closeAll() {
	conns := p.takeAll()
	for _, c := range conns {
		c.close(ErrConnClosed)
	}
	deadline := time.NewTimer(closeAllTimeout)
	defer deadline.Stop()
	for _, c := range conns {
		select {
		case <-c.closed:
		case <-deadline.C:
			for _, c := range conns {
				c.forceClose()
			}
			return
		}
	}
}
