package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// errDoQProtocol marks an answer that breaks DoQ's framing (RFC 9250
// §4.3.3): the connection it came on is closed with DOQ_PROTOCOL_ERROR.
var errDoQProtocol = fmt.Errorf("%w: DoQ protocol error", ErrBadAnswer)

// doqConn is one QUIC connection to a DoQ upstream, carrying many queries
// at once, each on a bidirectional stream of its own. Nothing is shared
// between the queries but the connection, so nothing is matched: a
// stream's answer is its query's. It closes itself, in good order, once
// nothing was asked on it for idleTimeout.
type doqConn struct {
	qc          *quic.Conn
	addr        netip.AddrPort
	idleTimeout time.Duration
	log         *slog.Logger
	load        atomic.Int32 // queries in flight, readable without the lock

	mu       sync.Mutex
	closing  bool        // closed or being closed: it takes no more queries
	lastDone time.Time   // when the last query in flight ended
	idle     *time.Timer // runs closeIfIdle
}

func newDoQConn(qc *quic.Conn, addr netip.AddrPort, idleTimeout time.Duration, log *slog.Logger) *doqConn {
	c := &doqConn{qc: qc, addr: addr, idleTimeout: idleTimeout, log: log, lastDone: time.Now()}
	c.mu.Lock()
	c.idle = time.AfterFunc(idleTimeout, c.closeIfIdle)
	c.mu.Unlock()
	return c
}

// exchange carries the packed query wire (ID 0) on a stream of its own:
// the query, with its 2-octet length, then the end of the stream (STREAM
// FIN); then the answer, with its own length. The query's context ending
// cancels the stream both ways with DOQ_REQUEST_CANCELLED (RFC 9250
// §4.3). The query was counted on the connection by begin; the caller
// ends it.
func (c *doqConn) exchange(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error) {
	s, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, c.fail(ctx, "opening a stream", err)
	}
	stop := context.AfterFunc(ctx, func() { cancelStream(s, doqRequestCancelled) })
	defer stop()

	buf := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(buf, uint16(len(wire)))
	copy(buf[2:], wire)
	if _, err = s.Write(buf); err == nil {
		err = s.Close()
	}
	if err != nil {
		cancelStream(s, doqRequestCancelled)
		return nil, c.fail(ctx, "sending the query", err)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		st := c.qc.ConnectionState()
		c.log.DebugContext(ctx, "query sent", "qname", q.Name, "qtype", dns.TypeToString[q.Qtype],
			"quic", st.Version.String(), "resumed", st.TLS.DidResume, "size", len(wire))
	}

	r, err := readAnswer(s, q)
	switch {
	case err == nil:
		// The answer is all this stream carries: stop reading it, should
		// its end not have come with the answer (a no-op when it did).
		s.CancelRead(doqNoError)
		return r, nil
	case errors.Is(err, errDoQProtocol) && ctx.Err() == nil:
		c.close(doqProtocolError, "")
	default:
		cancelStream(s, doqRequestCancelled)
	}
	return nil, c.fail(ctx, "reading the answer", err)
}

// readAnswer reads the answer on s: its 2-octet length, then the
// message, which must have ID 0 (RFC 9250 §4.2.1) and answer q.
func readAnswer(s io.Reader, q dns.Question) (*dns.Msg, error) {
	var prefix [2]byte
	if _, err := io.ReadFull(s, prefix[:]); err != nil {
		return nil, framingErr(err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(prefix[:]))
	if _, err := io.ReadFull(s, buf); err != nil {
		return nil, framingErr(err)
	}
	if len(buf) >= 2 && binary.BigEndian.Uint16(buf) != 0 {
		return nil, fmt.Errorf("%w: an answer with message ID %d, not 0", errDoQProtocol, binary.BigEndian.Uint16(buf))
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	if err := checkAnswer(m, q); err != nil {
		return nil, err
	}
	return m, nil
}

// framingErr describes a failed read: the stream's end before a whole
// answer is a protocol error; anything else (a reset stream, a closed
// connection) is the error it is.
func framingErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the stream ended before the whole answer", errDoQProtocol)
	}
	return err
}

func cancelStream(s *quic.Stream, code quic.StreamErrorCode) {
	s.CancelWrite(code)
	s.CancelRead(code)
}

// fail describes a failed exchange with the action and the address.
// Whatever the stream said, the context's end is why it failed when it
// ended. A connection closed under the query is ErrConnClosed, so that
// the query is resent, and no longer handed out: a stream learns of the
// close before the connection's context does.
func (c *doqConn) fail(ctx context.Context, action string, err error) error {
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(err, ErrBadAnswer):
	case connClosed(err):
		c.retire()
		err = fmt.Errorf("%w: %w", ErrConnClosed, err)
	case c.qc.Context().Err() != nil:
		c.retire()
		err = fmt.Errorf("%w: %w", ErrConnClosed, context.Cause(c.qc.Context()))
	case isStreamError(err):
		// The server gave up on this query alone (as DoH's reset
		// stream): no answer, and the connection serves on.
		err = fmt.Errorf("%w: %w", ErrStreamReset, err)
	}
	return fmt.Errorf("quic %s: %s: %w", c.addr, action, err)
}

// connClosed reports whether err is the end of the whole connection, as
// a stream reports it: it may come before the connection's context ends.
func connClosed(err error) bool {
	var (
		app   *quic.ApplicationError
		trans *quic.TransportError
		idle  *quic.IdleTimeoutError
		hs    *quic.HandshakeTimeoutError
		reset *quic.StatelessResetError
	)
	return errors.As(err, &app) || errors.As(err, &trans) || errors.As(err, &idle) ||
		errors.As(err, &hs) || errors.As(err, &reset)
}

// isStreamError reports whether err is the query's stream reset or
// stopped by the server.
func isStreamError(err error) bool {
	var se *quic.StreamError
	return errors.As(err, &se) && se.Remote
}

// begin counts a query in flight, unless the connection is closing.
func (c *doqConn) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if c.load.Add(1) == 1 {
		c.idle.Stop()
	}
	return true
}

// end counts a query done; the last one out starts the idle clock.
func (c *doqConn) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.load.Add(-1) == 0 && !c.closing {
		c.lastDone = time.Now()
		c.idle.Reset(c.idleTimeout)
	}
}

// closeIfIdle closes the connection with DOQ_NO_ERROR when nothing was
// asked on it for idleTimeout. A timer that fired as a query began or
// ended (Stop and Reset cannot take it back) finds it busy, or idle for
// less, and does not.
func (c *doqConn) closeIfIdle() {
	c.mu.Lock()
	if c.closing || c.load.Load() > 0 {
		c.mu.Unlock()
		return
	}
	if rest := c.idleTimeout - time.Since(c.lastDone); rest > 0 {
		c.idle.Reset(rest)
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.mu.Unlock()
	c.qc.CloseWithError(doqNoError, "")
}

// retire takes a connection that was closed out of use.
func (c *doqConn) retire() {
	c.mu.Lock()
	c.closing = true
	c.idle.Stop()
	c.mu.Unlock()
}

// close closes the connection with code; queries on it fail at once. It
// returns once the connection is closed, which QUIC does without waiting
// for the peer.
func (c *doqConn) close(code quic.ApplicationErrorCode, reason string) {
	c.retire()
	c.qc.CloseWithError(code, reason)
}

// inFlight counts the queries on c.
func (c *doqConn) inFlight() int32 { return c.load.Load() }

// alive reports whether the connection can take queries.
func (c *doqConn) alive() bool {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	return !closing && c.qc.Context().Err() == nil
}
