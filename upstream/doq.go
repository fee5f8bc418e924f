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
	// The connections, each picked with the query counted on it
	// (doqConn.begin), which ends it.
	connSet[*doqConn]
	ep          *endpoint
	tlsConf     *tls.Config
	quicConf    *quic.Config
	idleTimeout time.Duration
	log         *slog.Logger
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
	d := &doq{
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
		idleTimeout: opts.IdleTimeout,
		log:         log,
	}
	d.connSet = connSet[*doqConn]{max: opts.MaxConns, dialTimeout: opts.DialTimeout, handshake: d.handshake,
		discard: func(c *doqConn) { c.close(doqNoError, "") }, take: (*doqConn).begin}
	return d, nil
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

// doqCloseTimeout bounds closeAll's wait for the connections to close:
// a CONNECTION_CLOSE each, which QUIC sends without waiting for the peer.
const doqCloseTimeout = time.Second

// closeAll closes every connection with DOQ_NO_ERROR, all at once;
// queries on them fail at once. It returns when they are closed, or after
// doqCloseTimeout.
func (d *doq) closeAll() {
	conns := d.takeAll()
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
