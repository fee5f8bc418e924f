package dottest

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// ackWait is how long a client has to ACK a SETTINGS or a PING before
// the H2RawServer calls it a violation: far longer than a loopback round
// trip takes on a loaded machine.
const ackWait = 2 * time.Second

// H2RawServer is an in-process DNS-over-HTTPS server speaking HTTP/2
// frame by frame (golang.org/x/net/http2's Framer and hpack), so that a
// test can make it do what HTTP/2 allows and common servers rarely do:
// tiny flow-control windows, one stream at a time, headers and bodies cut
// into many padded frames, trailers, answers out of order, GOAWAY, stream
// resets, silence. It also checks that the client keeps HTTP/2's and RFC
// 8484's rules, and records each breach (Violations).
type H2RawServer struct {
	opts    H2RawOptions
	tlsConf *tls.Config
	ln      net.Listener
	addr    netip.AddrPort

	handler  atomic.Pointer[Handler]
	behavior atomic.Pointer[H2RawBehavior]
	withhold atomic.Bool

	accepts, streams, requests, answered atomic.Int64
	pingAcks, settingsAcks, closed       atomic.Int64
	reordered, ignored, peak             atomic.Int64

	mu         sync.Mutex
	conns      []*h2rawConn // every connection accepted, in order
	violations []string
	fired      map[string]int // faults played, by query name
	wg         sync.WaitGroup
	stopped    bool
}

// StartH2Raw starts an H2RawServer and stops it when the test ends.
func StartH2Raw(tb testing.TB, opts H2RawOptions) *H2RawServer {
	tb.Helper()
	s := &H2RawServer{
		opts: opts,
		tlsConf: &tls.Config{
			Certificates: []tls.Certificate{opts.Cert},
			NextProtos:   []string{"h2"},
		},
		fired: map[string]int{},
	}
	h := opts.Handler
	if h == nil {
		h = Answer("192.0.2.1")
	}
	s.SetHandler(h)
	s.SetBehavior(opts.Behavior)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dottest: listening for raw HTTP/2: %v", err)
	}
	s.ln = ln
	s.addr = netip.MustParseAddrPort(ln.Addr().String())
	s.wg.Go(s.accept)
	tb.Cleanup(s.stop)
	return s
}

func (s *H2RawServer) accept() {
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			raw.Close()
			return
		}
		c := newH2RawConn(s, len(s.conns), raw)
		s.conns = append(s.conns, c)
		s.accepts.Add(1)
		s.wg.Go(c.serve)
		s.mu.Unlock()
	}
}

// stop closes the listener and every connection, and waits for the
// server's goroutines.
func (s *H2RawServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	s.stopped = true
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	s.wg.Wait()
}

// Addr is the server's TCP address.
func (s *H2RawServer) Addr() netip.AddrPort { return s.addr }

// SetHandler changes what the server answers from now on.
func (s *H2RawServer) SetHandler(h Handler) { s.handler.Store(&h) }

// SetBehavior changes how the server answers the requests it reads from
// now on. b is the server's own from then on: b.Faults is copied.
func (s *H2RawServer) SetBehavior(b H2RawBehavior) {
	b.Faults = maps.Clone(b.Faults)
	b.ExtraFields = slices.Clone(b.ExtraFields)
	s.behavior.Store(&b)
}

// WithholdWindow stops (true) or resumes (false) the server's
// WINDOW_UPDATE frames: while withheld, a client that used its window
// must wait; resuming grants everything owed at once.
func (s *H2RawServer) WithholdWindow(on bool) {
	s.withhold.Store(on)
	if !on {
		s.eachReady(func(c *h2rawConn) { c.grantOwed() })
	}
}

// UpdateSettings sends another SETTINGS frame on every open connection
// (once the one before it is ACKed).
func (s *H2RawServer) UpdateSettings(settings ...http2.Setting) {
	s.eachReady(func(c *h2rawConn) { c.sendSettings(settings) })
}

// Ping sends a PING of the server's own on every open connection; the
// client must ACK it (PingAcks, and Violations when it does not).
func (s *H2RawServer) Ping() { s.eachReady(func(c *h2rawConn) { c.ping(false) }) }

// Silence makes every open connection silent for good, as a resolver gone
// without a FIN or a reset is: it reads on and writes nothing (no answer,
// no ACK, no WINDOW_UPDATE). Connections accepted later are not silent.
func (s *H2RawServer) Silence() { s.each(func(c *h2rawConn) { c.silent.Store(true) }) }

// eachReady runs f on every open connection once it is ready to write
// frames (its TLS handshake and first SETTINGS done).
func (s *H2RawServer) eachReady(f func(*h2rawConn)) {
	s.each(func(c *h2rawConn) {
		select {
		case <-c.ready:
			f(c)
		case <-c.done:
		}
	})
}

// each runs f on every open connection.
func (s *H2RawServer) each(f func(*h2rawConn)) {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		if !c.isClosed() {
			f(c)
		}
	}
}

// Accepts counts the connections accepted.
func (s *H2RawServer) Accepts() int64 { return s.accepts.Load() }

// Streams counts the streams clients opened.
func (s *H2RawServer) Streams() int64 { return s.streams.Load() }

// Requests counts the requests read whole, the ones GOAWAY left
// unanswered aside.
func (s *H2RawServer) Requests() int64 { return s.requests.Load() }

// Answered counts the responses sent whole (END_STREAM).
func (s *H2RawServer) Answered() int64 { return s.answered.Load() }

// Ignored counts the streams opened above GOAWAY's last stream, which
// the server leaves unanswered.
func (s *H2RawServer) Ignored() int64 { return s.ignored.Load() }

// PeakStreams is the most streams a client had open at once on one
// connection.
func (s *H2RawServer) PeakStreams() int64 { return s.peak.Load() }

// PingAcks counts the ACKs of the server's PINGs (GOAWAY's included).
func (s *H2RawServer) PingAcks() int64 { return s.pingAcks.Load() }

// SettingsAcks counts the ACKs of the server's SETTINGS frames.
func (s *H2RawServer) SettingsAcks() int64 { return s.settingsAcks.Load() }

// Closed counts the connections that ended, whichever side ended them.
func (s *H2RawServer) Closed() int64 { return s.closed.Load() }

// Reordered counts the answers sent before that of a request read
// earlier on the same connection.
func (s *H2RawServer) Reordered() int64 { return s.reordered.Load() }

// RequestsPerConn counts the requests read on each connection, in the
// order they were accepted.
func (s *H2RawServer) RequestsPerConn() []int64 {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	n := make([]int64, len(conns))
	for i, c := range conns {
		n[i] = c.requests.Load()
	}
	return n
}

// Waiting counts the open streams whose request body is still coming,
// as when a client waits for flow-control window.
func (s *H2RawServer) Waiting() int {
	n := 0
	s.each(func(c *h2rawConn) { n += c.waiting() })
	return n
}

// Violations returns the client's breaches of HTTP/2's and RFC 8484's
// rules seen so far, oldest first, each naming its connection; a SETTINGS
// or PING left unACKed for ackWait is one.
func (s *H2RawServer) Violations() []string {
	s.each(func(c *h2rawConn) { c.checkAcks(time.Now()) })
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// violation records one breach by the client on connection conn.
func (s *H2RawServer) violation(conn int, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf("conn %d: ", conn)+fmt.Sprintf(format, args...))
}

// fault returns the fault to play on a request for name, and counts it.
func (s *H2RawServer) fault(b *H2RawBehavior, name string) H2Fault {
	rule, ok := b.Faults[name]
	if !ok || rule.Fault == FaultNone {
		return FaultNone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rule.Times > 0 && s.fired[name] >= rule.Times {
		return FaultNone
	}
	s.fired[name]++
	return rule.Fault
}
