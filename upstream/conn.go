package upstream

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// conn is one persistent TLS connection to an upstream carrying many
// queries at once (RFC 7766 §6.2.1.1 pipelining): each query gets a fresh
// random ID, a single reader goroutine matches answers to waiting queries
// by ID and question, and when the connection breaks every query waiting
// on it fails at once.
type conn struct {
	tc          *tls.Conn
	idleTimeout time.Duration
	stallAfter  func() time.Duration // asked when a query is given up

	qmu   sync.Mutex    // guards queue and spare
	queue []byte        // queries waiting to be written, length-prefixed
	spare []byte        // the buffer written last, reused as the next queue
	wake  chan struct{} // tells the writer that queue has something; buffered 1

	mu      sync.Mutex
	pending map[uint16]*call
	err     error // set once when the connection is finished
	// quietSince is when the connection last read an answer (any answer)
	// or, when it was idle, was last asked something: the start of the
	// time it may have failed to answer. Time spent idle, with nothing
	// asked, is no failure.
	quietSince time.Time
	unanswered int // queries given up on since quietSince

	done   chan struct{}
	closed chan struct{} // closed once the socket is closed, after done
	load   atomic.Int32  // len(pending), readable without the lock
}

type call struct {
	q  dns.Question
	ch chan result // buffered 1
}

type result struct {
	msg *dns.Msg
	err error
}

// unansweredLimit is how many queries in a row a connection may leave
// unanswered, with nothing read for stallAfter while it was asked, before
// it is taken for stalled (a frozen resolver keeps its TCP connections
// open).
const unansweredLimit = 3

// writeTimeout bounds one query's write. A query is a few hundred octets
// that the socket buffer takes at once; a write still blocked after this
// long has a peer that stopped reading.
const writeTimeout = 2 * time.Second

func newConn(tc *tls.Conn, idleTimeout time.Duration, stallAfter func() time.Duration) *conn {
	c := &conn{
		tc:          tc,
		idleTimeout: idleTimeout,
		stallAfter:  stallAfter,
		pending:     make(map[uint16]*call),
		quietSince:  time.Now(),
		done:        make(chan struct{}),
		closed:      make(chan struct{}),
		wake:        make(chan struct{}, 1),
	}
	// Nothing sent yet: the idle clock starts now. (No lock needed:
	// nothing else has c yet.)
	c.armIdleLocked()
	go c.readLoop()
	go c.writeLoop()
	return c
}

// exchange sends the packed query wire (its ID is overwritten) and waits
// for the matching answer, the context's end or the connection's.
func (c *conn) exchange(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error) {
	cl := &call{q: q, ch: make(chan result, 1)}
	id, err := c.register(cl)
	if err != nil {
		return nil, err
	}
	if err := c.write(ctx, wire, id); err != nil {
		c.unregister(id)
		return nil, err
	}
	select {
	case r := <-cl.ch:
		return r.msg, r.err
	case <-ctx.Done():
		c.unregister(id)
		c.giveUp()
		return nil, ctx.Err()
	}
}

func (c *conn) register(cl *call) (uint16, error) {
	var b [2]byte
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.pending) == 0 {
		// Busy from now: no idle clock while an answer is awaited.
		c.tc.SetReadDeadline(time.Time{})
		if c.unanswered == 0 {
			c.quietSince = time.Now()
		}
	}
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("query ID: %w", err)
		}
		id := binary.BigEndian.Uint16(b[:])
		if _, taken := c.pending[id]; !taken {
			c.pending[id] = cl
			c.load.Store(int32(len(c.pending)))
			return id, nil
		}
	}
}

func (c *conn) unregister(id uint16) {
	c.mu.Lock()
	c.removeLocked(id)
	c.mu.Unlock()
}

// removeLocked forgets a query; the last one out starts the idle clock.
func (c *conn) removeLocked(id uint16) {
	delete(c.pending, id)
	c.load.Store(int32(len(c.pending)))
	if len(c.pending) == 0 && c.err == nil {
		c.armIdleLocked()
	}
}

// armIdleLocked makes the reader give up, closing the connection, when
// nothing is asked for idleTimeout (RFC 7766 §6.2.3: idle means no query
// pending).
func (c *conn) armIdleLocked() {
	c.tc.SetReadDeadline(time.Now().Add(c.idleTimeout))
}

// giveUp records a query abandoned unanswered. A connection that keeps
// taking queries and answering none while the resolver's other paths
// answer is closed now, failing what waits on it, instead of costing every
// later query its full timeout.
func (c *conn) giveUp() {
	after := c.stallAfter()
	c.mu.Lock()
	c.unanswered++
	stalled := c.unanswered >= unansweredLimit && time.Since(c.quietSince) >= after
	c.mu.Unlock()
	if stalled {
		c.close(ErrStalled)
	}
}

// errIdle closes a connection nothing was asked on for its idle timeout.
var errIdle = fmt.Errorf("%w: idle", ErrConnClosed)

// closeNotifyTimeout bounds the TLS close_notify of a connection closed
// in good order. crypto/tls allows it 5 s, behind any write in progress;
// a resolver that has not taken it in this long is not reading.
const closeNotifyTimeout = time.Second

// close finishes the connection once, failing every waiting query with
// err, and returns at once: the socket is closed in the background
// (closed tells when), so that a caller on a query's path never waits
// for a peer that stopped reading. A connection closed in good order
// (idle, or by its pool) says close_notify first, for up to
// closeNotifyTimeout; a broken or stalled one is simply dropped.
func (c *conn) close(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	c.load.Store(0)
	c.mu.Unlock()
	close(c.done)
	go c.closeSocket(err == ErrConnClosed || err == errIdle)
	for _, cl := range pending {
		cl.ch <- result{err: err}
	}
}

// closeSocket closes the TLS connection, with a close_notify when
// graceful, and then closes c.closed.
func (c *conn) closeSocket(graceful bool) {
	defer close(c.closed)
	shutTLS(graceful, c.tc.Close, c.forceClose)
}

// shutTLS closes a TLS connection with closeTLS, which says close_notify
// (and whatever else is queued) first: within closeNotifyTimeout when
// graceful, after which force closes the socket under it; at once, the
// socket forced first, otherwise. DoT's and DoH's connections both end
// this way.
func shutTLS(graceful bool, closeTLS func() error, force func()) {
	if !graceful {
		force()
	} else {
		t := time.AfterFunc(closeNotifyTimeout, force)
		defer t.Stop()
	}
	closeTLS()
}

// forceClose closes the socket under the TLS connection, which ends a
// close_notify or a write blocked on a peer that does not read.
func (c *conn) forceClose() { c.tc.NetConn().Close() }

// closeErr is why the connection was closed, nil while it is open.
func (c *conn) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// inFlight counts the queries waiting for an answer on c.
func (c *conn) inFlight() int32 { return c.load.Load() }

// alive reports whether the connection can take queries.
func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// tlsVersion names the connection's TLS version, for logs.
func (c *conn) tlsVersion() string {
	return tls.VersionName(c.tc.ConnectionState().Version)
}
