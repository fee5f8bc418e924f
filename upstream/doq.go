package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// alpnDoQ is the ALPN protocol ID for DNS-over-QUIC (RFC 9250 §4.1).
const alpnDoQ = "doq"

// DoQ error codes (RFC 9250 §4.3), for closing connections and
// cancelling streams.
const (
	doqNoError          = 0x0
	doqProtocolError    = 0x2
	doqRequestCancelled = 0x3
)

// idleGrace is how much longer than the idle timeout QUIC itself waits
// for a silent peer: our own timer closes an idle connection first, in
// good order (DOQ_NO_ERROR), while QUIC's still ends one whose peer
// vanished with queries in flight.
const idleGrace = time.Second

// tokensPerUpstream bounds the address-validation tokens kept for the
// one server a DoQ upstream speaks to: each lets a later dial skip the
// server's Retry round trip.
const tokensPerUpstream = 4

// doq is the carrier of a DNS-over-QUIC upstream (RFC 9250): persistent
// QUIC connections, up to max, each carrying many queries at once, one
// bidirectional stream per query. Dialing happens in the background with
// its own deadline, as the DoT pool does.
type doq struct {
	ep          *endpoint
	tlsConf     *tls.Config
	quicConf    *quic.Config
	max         int
	dialTimeout time.Duration
	idleTimeout time.Duration
	log         *slog.Logger

	mu      sync.Mutex
	conns   []*doqConn
	dialing chan struct{} // closed when the dial under way ends; nil when none
	dialErr error         // the last dial's error
	closed  bool
}

var _ carrier = (*doq)(nil)

// newDoQ makes the carrier of a DNS-over-QUIC upstream: tlsConf's
// verification, pins and clock, with ALPN "doq"; its session cache lets
// later connections resume the session, a handshake without the
// certificate's signature. They do not send 0-RTT data: quic-go v0.65
// races when a stream opens while the handshake of a 0-RTT connection
// completes (quic-go issue 4303), which is exactly when 0-RTT queries go.
func newDoQ(opts Options, ep *endpoint, tlsConf *tls.Config, log *slog.Logger) (carrier, error) {
	tc := tlsConf.Clone()
	tc.NextProtos = []string{alpnDoQ}
	tc.MinVersion = tls.VersionTLS13 // QUIC carries TLS 1.3 only (RFC 9001 §4.2)
	return &doq{
		ep:      ep,
		tlsConf: tc,
		quicConf: &quic.Config{
			// The handshake is bounded as a DoT dial is.
			HandshakeIdleTimeout: opts.DialTimeout,
			MaxIdleTimeout:       opts.IdleTimeout + idleGrace,
			TokenStore:           quic.NewLRUTokenStore(1, tokensPerUpstream),
			// Queries go on streams the client opens (RFC 9250 §4.2):
			// the server may open none.
			MaxIncomingStreams:    -1,
			MaxIncomingUniStreams: -1,
		},
		max:         opts.MaxConns,
		dialTimeout: opts.DialTimeout,
		idleTimeout: opts.IdleTimeout,
		log:         log,
	}, nil
}

// exchange implements carrier for DNS over QUIC: on a stream of one of the
// connections, resent once on a fresh connection when a reused one turns
// out to be closed.
func (d *doq) exchange(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error) {
	return resendOnce(ctx, d.get, func(c *doqConn) (*dns.Msg, error) {
		defer c.end()
		return c.exchange(ctx, wire, q)
	})
}

// get returns a connection with the query counted on it (the caller
// ends it), and whether it was dialed while the query waited (a fresh
// connection's failure is not worth a retry). The query is counted as
// the connection is picked, so that a burst of queries sees the load it
// makes and grows the pool.
func (d *doq) get(ctx context.Context) (*doqConn, bool, error) {
	for waited := false; ; waited = true {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, false, ErrConnClosed
		}
		if waited && d.dialErr != nil {
			err := d.dialErr
			d.mu.Unlock()
			return nil, false, err
		}
		if c := d.pickLocked(); c != nil {
			if c.load.Load() > busyThreshold && len(d.conns) < d.max && d.dialing == nil {
				// The busy one still takes this query; a new one takes
				// later ones, if the dial succeeds.
				d.dialing = make(chan struct{})
				go d.dial(d.dialing)
			}
			d.mu.Unlock()
			return c, waited, nil
		}
		wait := d.dialing
		if wait == nil {
			wait = make(chan struct{})
			d.dialing = wait
			go d.dial(wait)
		}
		d.mu.Unlock()

		select {
		case <-wait:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// pickLocked returns the least loaded live connection with a query
// counted on it, or nil.
func (d *doq) pickLocked() *doqConn {
	for {
		c := d.leastLoadedLocked()
		if c == nil || c.begin() {
			return c
		}
		// It began closing since: the next look drops it.
	}
}

// leastLoadedLocked drops finished connections and returns the least
// loaded live one, or nil.
func (d *doq) leastLoadedLocked() *doqConn {
	var best *doqConn
	live := d.conns[:0]
	for _, c := range d.conns {
		if !c.alive() {
			continue
		}
		live = append(live, c)
		if best == nil || c.load.Load() < best.load.Load() {
			best = c
		}
	}
	clear(d.conns[len(live):])
	d.conns = live
	return best
}

// dial dials a connection with its own deadline, so that a query that
// gives up does not waste a handshake the next query can use.
func (d *doq) dial(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), d.dialTimeout)
	defer cancel()
	c, err := d.handshake(ctx)
	d.mu.Lock()
	d.dialErr = err
	if err == nil {
		if d.closed {
			go c.close(doqNoError, "")
		} else {
			d.conns = append(d.conns, c)
		}
	}
	d.dialing = nil
	d.mu.Unlock()
	close(done)
}

// handshake dials one connection, resuming the last session when the
// cache holds a ticket.
func (d *doq) handshake(ctx context.Context) (*doqConn, error) {
	addr, err := d.ep.addr(ctx)
	if err != nil {
		return nil, fmt.Errorf("quic %s: dialing: %w", d.ep, &dialError{err})
	}
	// DialAddr's socket is its own, closed with the connection.
	qc, err := quic.DialAddr(ctx, addr.String(), d.tlsConf, d.quicConf)
	if err != nil {
		d.ep.failed(addr)
		return nil, fmt.Errorf("quic %s: dialing: %w", addr, &dialError{err})
	}
	return newDoQConn(qc, addr, d.idleTimeout, d.log), nil
}

// open counts the live connections.
func (d *doq) open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.leastLoadedLocked()
	return len(d.conns)
}

// doqCloseTimeout bounds closeAll's wait for the connections to close:
// a CONNECTION_CLOSE each, which QUIC sends without waiting for the peer.
const doqCloseTimeout = time.Second

// closeAll closes every connection with DOQ_NO_ERROR, all at once;
// queries on them fail at once. It returns when they are closed, or after
// doqCloseTimeout.
func (d *doq) closeAll() {
	d.mu.Lock()
	conns := d.conns
	d.conns = nil
	d.closed = true
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.close(doqNoError, "") })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(doqCloseTimeout):
	}
}
