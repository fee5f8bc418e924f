package listener

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dotproxy/dotproxy/internal/rawconn"
	"github.com/dotproxy/dotproxy/resolver"
)

// tcpConn is one client's TCP connection. Its reader goroutine reads
// queries one after another. It answers those the resolver chain answers
// at once (cache hits) itself and writes them together, and hands each
// other query to a worker. Answers go out in the order they are ready
// (RFC 7766 §6.2.1.1).
type tcpConn struct {
	conn   net.Conn // the accepted socket, read and written raw (rawconn)
	client netip.AddrPort
	key    netip.Addr // the client's IP, for the per-client cap
	share  *share     // the client's share of the in-flight budget

	srv *Server
	sem chan struct{}  // one token per query read and not yet answered
	wg  sync.WaitGroup // the goroutines answering its queries
	wmu sync.Mutex     // one write at a time
	qmu sync.Mutex     // guards queue and spare
	// queue holds answers, length-prefixed, waiting to be written;
	// spare is the buffer written last, reused as the next queue.
	queue, spare []byte
	// queued counts the octets of answers queued or being written: past
	// tcpMaxQueued the reader reads no more until they are written.
	queued atomic.Int64
	mu     sync.Mutex // guards busy and the read deadline
	busy   int        // queries being answered
}

// acceptTCP accepts connections on ln until Shutdown closes it.
func (s *Server) acceptTCP(ln *net.TCPListener) {
	defer s.wg.Done()
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if s.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.acceptWarn.Warn(s.log, "accepting TCP connection failed", "addr", ln.Addr().String(), "err", err)
			s.pause(readErrorPause)
			continue
		}
		s.admit(c)
	}
}

// admit starts serving c, or closes it at once when it would go over the
// global or the per-client connection cap.
func (s *Server) admit(c *net.TCPConn) {
	remote, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok { // reset before we got to it
		c.Close()
		return
	}
	client := remote.AddrPort()
	key := client.Addr().Unmap()
	s.mu.Lock()
	if s.state != stateRunning {
		s.mu.Unlock()
		c.Close()
		return
	}
	var over string
	switch {
	case len(s.conns) >= s.live.Load().maxConns:
		over = "MaxTCPConns"
	case s.perClient[key] >= s.live.Load().perClient:
		over = "MaxTCPConnsPerClient"
	}
	if over != "" {
		s.mu.Unlock()
		s.capWarn.Warn(s.log, "TCP connection refused: limit reached", "client", client, "limit", over)
		c.Close()
		return
	}
	tc := &tcpConn{
		conn:   rawconn.Wrap(c),
		client: client,
		key:    key,
		srv:    s,
		sem:    make(chan struct{}, s.live.Load().inflightConn),
		share:  s.budget.join(clientKey(key)),
	}
	s.conns[tc] = struct{}{}
	s.perClient[key]++
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serveTCP(tc)
}

// forget removes c from the connection counts.
func (s *Server) forget(c *tcpConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.budget.leave(c.share)
	if s.perClient[c.key]--; s.perClient[c.key] <= 0 {
		delete(s.perClient, c.key)
	}
}

// serveTCP reads queries from c until the client closes, goes idle or
// stalls, or Shutdown; then it waits for the queries being answered, so
// their answers go out, and closes c.
func (s *Server) serveTCP(c *tcpConn) {
	defer s.wg.Done()
	defer s.forget(c)
	defer c.conn.Close()
	defer c.wg.Wait()

	// Buffered: a query is then one read(2), not two (prefix, message),
	// and pipelined queries that arrive together take one between them.
	br := bufio.NewReaderSize(c.conn, tcpReadBuffer)
	var prefix [2]byte
	var buf []byte // the query being read, reused
	// Answers made at once (cache hits), length prefixed, go out
	// together: written when no whole query is left in the read buffer,
	// before the reader can block.
	var out []byte
	defer func() { c.flush(out) }()
	sc := new(scratch)
	for {
		if len(out) > 0 && (len(out) >= tcpFlushSize || !wholeBuffered(br)) {
			if err := c.flush(out); err != nil {
				out = nil // not again on the way out
				return
			}
			out = out[:0]
		}
		// A client that does not read its answers gets no more than
		// tcpMaxQueued octets of them queued (and as many as its
		// queries in flight): the reader helps write them out, and
		// waits for that, before it reads another query.
		for c.queued.Load() > tcpMaxQueued {
			if err := c.drain(); err != nil {
				out = nil
				return
			}
		}
		// At the cap, stop reading: TCP flow control then slows the
		// client down instead of us dropping its queries. Answers
		// already made go out first: they must not wait for a slow
		// query to end.
		select {
		case c.sem <- struct{}{}:
		default:
			if err := c.flush(out); err != nil {
				out = nil
				return
			}
			out = out[:0]
			select {
			case c.sem <- struct{}{}:
			case <-s.done:
				return
			}
		}
		c.armDeadline()
		raw, err := readMsg(br, prefix[:], &buf)
		if err != nil {
			<-c.sem
			if !errors.Is(err, io.EOF) && !s.closing() {
				s.log.Debug("closing TCP connection", "client", c.client, "err", err)
			}
			return
		}
		n := len(out)
		o, wait := s.answerNow(sc, append(out, 0, 0), raw, c.client, resolver.TCP)
		if !wait {
			if len(o) > n+2 {
				binary.BigEndian.PutUint16(o[n:], uint16(len(o)-n-2))
				out = o
			}
			<-c.sem
			continue
		}
		// The answer waits: at the client's share or the global cap,
		// stop reading, as at the connection's cap, answers already
		// made going out first.
		t, ok := s.takeBudget(c, &out)
		if !ok {
			<-c.sem
			return
		}
		c.mu.Lock()
		c.busy++
		c.mu.Unlock()
		c.wg.Add(1)
		s.dispatch(job{tc: c, q: detach(&sc.q), t: t})
	}
}

// takeBudget takes a ticket of the in-flight budget for a query of c.
// When it must wait, it first writes out the answers made at once, which
// must not wait for a slow query. It reports false when the reader must
// stop (Shutdown, a failed write).
func (s *Server) takeBudget(c *tcpConn, out *[]byte) (ticket, bool) {
	if t, ok := s.budget.tryAcquire(c.share); ok {
		return t, true
	}
	err := c.flush(*out)
	*out = (*out)[:0]
	if err != nil {
		*out = nil // not again on the way out
		return ticket{}, false
	}
	return s.budget.acquire(c.share, s.done)
}

// tcpReadBuffer is the read buffer of a client TCP connection: several
// typical queries (tens of octets each) fit.
const tcpReadBuffer = 2048

// tcpMaxQueued is how many octets of answers a connection may have
// waiting to be written before its reader stops: a few big answers, or
// hundreds of small ones.
const tcpMaxQueued = 64 << 10

// tcpFlushSize is how many octets of fast answers a connection's reader
// collects at most before it writes them.
const tcpFlushSize = 16 << 10

// answerTCP answers one query read from c that had to wait, in a
// worker, and writes the answer.
func (s *Server) answerTCP(c *tcpConn, q *query, t ticket) {
	defer c.wg.Done()
	defer func() { <-c.sem }()
	defer s.budget.release(t)
	defer c.answered()
	defer s.recoverPanic(c.client, resolver.TCP)

	wire := s.answerWaiting(q)
	if len(wire) == 0 {
		return
	}
	c.write(wire)
}

// armDeadline sets the read deadline for the reader's next read. With
// nothing in flight the client has TCPIdleTimeout to send a whole query;
// with queries in flight there is none until the last is answered. After
// Shutdown the deadline is in the past, so the reader stops.
func (c *tcpConn) armDeadline() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setDeadline()
}

// answered records that one query's answer is done, starting the idle
// timeout if it was the last one in flight.
func (c *tcpConn) answered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy--
	c.setDeadline()
}

// stopReading makes the reader stop at once; called by Shutdown after it
// closed s.done.
func (c *tcpConn) stopReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setDeadline()
}

// setDeadline sets the read deadline for the current state. Because it
// checks for Shutdown under c.mu, it never undoes stopReading.
func (c *tcpConn) setDeadline() {
	switch {
	case c.srv.closing():
		c.conn.SetReadDeadline(aLongTimeAgo)
	case c.busy == 0:
		c.conn.SetReadDeadline(time.Now().Add(c.srv.live.Load().tcpIdle))
	default:
		c.conn.SetReadDeadline(time.Time{})
	}
}
