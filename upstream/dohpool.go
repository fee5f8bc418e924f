package upstream

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// httpConn is one HTTP/2 or HTTP/3 connection, carrying many requests
// at once on streams of its own.
type httpConn interface {
	// post sends wire, a query to question q, as a POST (RFC 8484
	// §4.1) and returns the answer, checked (dohAnswer.message).
	post(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error)
	// alive reports whether the connection is still open; a closed one
	// is dropped.
	alive() bool
	// lost reports whether err, a request's failure, says the whole
	// connection is gone or going, though alive may not tell yet: the
	// libraries fail the requests on it before they mark it closed.
	lost(err error) bool
	// available reports whether it may take another request without
	// waiting for one in flight to end (the server's stream limit).
	available() bool
	Close() error
}

// dialFunc dials one connection to addr, the TLS handshake included,
// within ctx. Its error is a *dialError.
type dialFunc func(ctx context.Context, addr netip.AddrPort) (httpConn, error)

// dohConn is one of the pool's connections, with the pool's bookkeeping.
type dohConn struct {
	conn httpConn
	addr netip.AddrPort // the address dialed, for errors

	// Guarded by the pool's mu.
	load      int       // requests taken and not released
	retired   bool      // it failed a request: no new one goes on it
	idleSince time.Time // when load last went to 0
	idle      *time.Timer
}

// dohPool keeps up to max persistent connections to one DoH upstream
// and hands out the least loaded, as pool does for DoT: dialing happens
// in the background with its own deadline, another connection is dialed
// while the busiest is too busy, and one idle for idleTimeout is closed.
// A connection that failed a request takes no new ones, and no longer
// counts against max; it is closed when its last request ends.
type dohPool struct {
	ep          *endpoint
	dial        dialFunc
	max         int
	dialTimeout time.Duration
	idleTimeout time.Duration

	mu      sync.Mutex
	conns   []*dohConn
	dialing chan struct{} // closed when the dial under way ends; nil when none
	dialed  *dohConn      // what that dial brought, for its waiters
	dialErr error         // the last dial's error
	closed  bool
}

// get takes a connection for one request, which the caller gives back
// with release, and reports whether it was dialed for this call (a fresh
// connection's failure is not worth a retry).
func (p *dohPool) get(ctx context.Context) (*dohConn, bool, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, false, ErrConnClosed
		}
		if best := p.pickLocked(); best != nil {
			p.growLocked(best, best.conn.available())
			best.load++
			p.mu.Unlock()
			return best, false, nil
		}
		wait := p.dialing
		if wait == nil {
			wait = make(chan struct{})
			p.dialing = wait
			go p.dialOne(wait)
		}
		p.mu.Unlock()

		select {
		case <-wait:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		p.mu.Lock()
		err, fresh := p.dialErr, p.dialed
		if err == nil && fresh != nil && !fresh.retired && fresh.conn.alive() && !p.closed {
			fresh.load++
			p.mu.Unlock()
			return fresh, true, nil
		}
		p.mu.Unlock()
		if err != nil {
			return nil, false, err
		}
	}
}

// ready takes an open connection that can take a request at once,
// without a dial, or returns nil; the caller gives it back with release.
func (p *dohPool) ready() *dohConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	best := p.pickLocked()
	if best == nil {
		return nil
	}
	avail := best.conn.available()
	p.growLocked(best, avail)
	if !avail {
		return nil // at the server's stream limit: not without waiting
	}
	best.load++
	return best
}

// release gives c back after a request; broken says the request failed
// on the connection's account, which then takes no new ones.
func (p *dohPool) release(c *dohConn, broken bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.load--
	if broken {
		c.retired = true
	}
	if c.load > 0 {
		return
	}
	if c.retired || !c.conn.alive() {
		p.dropLocked(c)
		return
	}
	c.idleSince = time.Now()
	c.idle.Reset(p.idleTimeout)
}

// pickLocked drops closed connections and returns the least loaded
// open one that takes requests, or nil.
func (p *dohPool) pickLocked() *dohConn {
	var best *dohConn
	kept := p.conns[:0]
	for _, c := range p.conns {
		alive := c.conn.alive()
		if !alive && c.load == 0 {
			c.idle.Stop()
			go c.conn.Close() // frees what the library still holds
			continue
		}
		kept = append(kept, c)
		if !c.retired && alive && (best == nil || c.load < best.load) {
			best = c
		}
	}
	clear(p.conns[len(kept):])
	p.conns = kept
	return best
}

// growLocked dials another connection in the background when best, the
// least loaded, is busy or not available (at the server's stream limit)
// and the pool is under its cap. best still takes the request at hand.
func (p *dohPool) growLocked(best *dohConn, available bool) {
	if p.dialing != nil || p.servingLocked() >= p.max {
		return
	}
	if best.load >= busyThreshold || !available {
		p.dialing = make(chan struct{})
		go p.dialOne(p.dialing)
	}
}

// servingLocked counts the connections that take requests.
func (p *dohPool) servingLocked() int {
	n := 0
	for _, c := range p.conns {
		if !c.retired {
			n++
		}
	}
	return n
}

// dropLocked removes c from the pool and closes it, unless closeAll
// took it already.
func (p *dohPool) dropLocked(c *dohConn) {
	i := slices.Index(p.conns, c)
	if i < 0 {
		return
	}
	p.conns = slices.Delete(p.conns, i, i+1)
	c.idle.Stop()
	go c.conn.Close() // an HTTP/2 close may wait on the socket's close_notify
}

// closeIdle closes c if it is still idle: it has been since idleSince,
// with nothing taken since.
func (p *dohPool) closeIdle(c *dohConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.load == 0 && time.Since(c.idleSince) >= p.idleTimeout {
		p.dropLocked(c)
	}
}

func (p *dohPool) dialOne(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), p.dialTimeout)
	defer cancel()
	var c *dohConn
	addr, err := p.ep.addr(ctx)
	if err != nil {
		err = fmt.Errorf("dialing %s: %w", p.ep, &dialError{err})
	} else {
		var hc httpConn
		if hc, err = p.dial(ctx, addr); err != nil {
			p.ep.failed(addr)
			err = fmt.Errorf("dialing %s: %w", addr, err)
		} else {
			c = &dohConn{conn: hc, addr: addr, idleSince: time.Now()}
		}
	}
	p.mu.Lock()
	p.dialErr, p.dialed = err, c
	if c != nil {
		if p.closed {
			go c.conn.Close()
		} else {
			c.idle = time.AfterFunc(p.idleTimeout, func() { p.closeIdle(c) })
			p.conns = append(p.conns, c)
		}
	}
	p.dialing = nil
	p.mu.Unlock()
	close(done)
}

// open counts the open connections, those on their way out included.
func (p *dohPool) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pickLocked()
	return len(p.conns)
}

// closeAll closes every connection, all at once; requests on them fail
// at once. It returns when they are closed, or after closeAllTimeout.
func (p *dohPool) closeAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.closed = true
	for _, c := range conns {
		c.idle.Stop()
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() { c.conn.Close() })
		}
		wg.Wait()
		close(done)
	}()
	deadline := time.NewTimer(closeAllTimeout)
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
	}
}
