package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// busyThreshold is how many queries in flight on the least-loaded
// connection make the pool open another one, while under its cap.
const busyThreshold = 64

// pool keeps up to max persistent connections to one upstream and hands
// out the least loaded. Dialing happens in the background with its own
// deadline, so a query that gives up does not waste a handshake the next
// query can use.
type pool struct {
	ep          *endpoint
	tlsConf     *tls.Config
	max         int
	dialTimeout time.Duration
	idleTimeout time.Duration
	stallAfter  func() time.Duration
	log         *slog.Logger

	mu      sync.Mutex
	conns   []*conn
	dialing chan struct{} // closed when the dial under way ends; nil when none
	dialErr error         // the last dial's error
	closed  bool
}

// get returns a connection to use and whether it was dialed for this
// call (a fresh connection's failure is not worth a retry).
func (p *pool) get(ctx context.Context) (*conn, bool, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, false, ErrConnClosed
		}
		if best := p.pickLocked(); best != nil {
			p.growLocked(best)
			p.mu.Unlock()
			return best, false, nil
		}
		wait := p.dialing
		if wait == nil {
			wait = make(chan struct{})
			p.dialing = wait
			go p.dial(wait)
		}
		p.mu.Unlock()

		select {
		case <-wait:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		p.mu.Lock()
		err := p.dialErr
		var fresh *conn
		if err == nil && len(p.conns) > 0 {
			fresh = p.conns[len(p.conns)-1]
		}
		p.mu.Unlock()
		if err != nil {
			return nil, false, err
		}
		if fresh != nil && fresh.alive() {
			return fresh, true, nil
		}
	}
}

// ready returns the least loaded open connection, or nil when there is
// none: it never waits for a dial, and starts one only as get does, for
// a busy pool under its cap.
func (p *pool) ready() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	best := p.pickLocked()
	if best != nil {
		p.growLocked(best)
	}
	return best
}

// growLocked dials another connection in the background when best, the
// least loaded, is busy and the pool is under its cap. A busy connection
// still takes the query at hand; the new one takes later ones, if the
// dial succeeds.
func (p *pool) growLocked(best *conn) {
	if best.load.Load() >= busyThreshold && len(p.conns) < p.max && p.dialing == nil {
		p.dialing = make(chan struct{})
		go p.dial(p.dialing)
	}
}

// pickLocked drops finished connections and returns the least loaded
// live one, or nil.
func (p *pool) pickLocked() *conn {
	var best *conn
	live := p.conns[:0]
	for _, c := range p.conns {
		if !c.alive() {
			continue
		}
		live = append(live, c)
		if best == nil || c.load.Load() < best.load.Load() {
			best = c
		}
	}
	clear(p.conns[len(live):])
	p.conns = live
	return best
}

func (p *pool) dial(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), p.dialTimeout)
	defer cancel()
	c, err := p.handshake(ctx)
	p.mu.Lock()
	p.dialErr = err
	if err == nil {
		if p.closed {
			c.close(ErrConnClosed)
		} else {
			p.conns = append(p.conns, c)
		}
	}
	p.dialing = nil
	p.mu.Unlock()
	close(done)
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

// open counts the live connections.
func (p *pool) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pickLocked()
	return len(p.conns)
}

// closeAllTimeout bounds closeAll's wait for the connections' sockets
// to close: a close_notify each, all at once.
const closeAllTimeout = closeNotifyTimeout + 500*time.Millisecond

// closeAll closes every connection, all at once; queries on them fail at
// once. It returns when the sockets are closed, or after closeAllTimeout
// with those still saying close_notify dropped.
func (p *pool) closeAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.closed = true
	p.mu.Unlock()
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
