package dottest

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// DoQOptions configures a DoQServer.
type DoQOptions struct {
	Cert    tls.Certificate // the certificate presented
	Handler Handler         // nil: Answer("192.0.2.1")
	// MaxStreams caps the streams a client may have open on a connection
	// at once (0: quic-go's default).
	MaxStreams int64
}

// DoQServer is an in-process DNS-over-QUIC server (RFC 9250) on a UDP
// port of 127.0.0.1. It records every query as it arrived on the wire. It
// issues session tickets that allow 0-RTT data, and counts what arrives
// that way, so that a test can tell whether a client sent any.
type DoQServer struct {
	tb       testing.TB
	tlsConf  *tls.Config
	quicConf *quic.Config
	addr     netip.AddrPort

	handler atomic.Pointer[Handler]
	stream  atomic.Pointer[StreamHandler]
	accepts atomic.Int64
	early   atomic.Int64 // STREAM frames read from 0-RTT packets

	mu       sync.Mutex
	ln       *quic.EarlyListener
	conns    map[*quic.Conn]struct{}
	received [][]byte
	closes   []error
	states   []quic.ConnectionState
	wg       sync.WaitGroup
}

// StartDoQ starts a DoQ server and stops it when the test ends.
func StartDoQ(tb testing.TB, opts DoQOptions) *DoQServer {
	tb.Helper()
	s := &DoQServer{
		tb: tb,
		tlsConf: &tls.Config{
			Certificates: []tls.Certificate{opts.Cert},
			NextProtos:   []string{"doq"},
			MinVersion:   tls.VersionTLS13,
		},
		conns: map[*quic.Conn]struct{}{},
	}
	s.quicConf = &quic.Config{
		Allow0RTT:          true,
		MaxIncomingStreams: opts.MaxStreams,
		Tracer: func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace {
			return earlyTrace{&s.early}
		},
	}
	h := opts.Handler
	if h == nil {
		h = Answer("192.0.2.1")
	}
	s.SetHandler(h)
	s.listen("127.0.0.1:0")
	tb.Cleanup(s.Kill)
	return s
}

func (s *DoQServer) listen(addr string) {
	ln, err := quic.ListenAddrEarly(addr, s.tlsConf, s.quicConf)
	if err != nil {
		s.tb.Fatalf("dottest: DoQ listening on %s: %v", addr, err)
	}
	s.addr = ln.Addr().(*net.UDPAddr).AddrPort()
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go s.accept(ln)
}

// Addr is the UDP address the server listens on.
func (s *DoQServer) Addr() netip.AddrPort { return s.addr }

// SetHandler changes what the server does with the queries it reads from
// now on. A Handler answers once per stream: replies after the first are
// dropped.
func (s *DoQServer) SetHandler(h Handler) { s.handler.Store(&h) }

// SetStreamHandler makes h take over every stream from now on; nil hands
// them back to the Handler.
func (s *DoQServer) SetStreamHandler(h StreamHandler) {
	if h == nil {
		s.stream.Store(nil)
		return
	}
	s.stream.Store(&h)
}

// Queries counts the queries read so far.
func (s *DoQServer) Queries() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.received))
}

// Received returns every query read so far, as it came on the wire
// (without its length), oldest first.
func (s *DoQServer) Received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// EarlyStreamFrames counts the STREAM frames read so far from 0-RTT
// packets: queries a client sent before its handshake completed.
func (s *DoQServer) EarlyStreamFrames() int64 { return s.early.Load() }

// Accepts counts the connections accepted so far.
func (s *DoQServer) Accepts() int64 { return s.accepts.Load() }

// Open counts the connections open now.
func (s *DoQServer) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// States returns the state of every connection whose handshake
// completed, oldest first: ALPN, resumption and 0-RTT among them.
func (s *DoQServer) States() []quic.ConnectionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.states)
}

// CloseErrors returns why each connection that ended did, oldest first:
// a client's CONNECTION_CLOSE comes as a remote *quic.ApplicationError.
func (s *DoQServer) CloseErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.closes)
}

// CloseConns closes every open connection with the application error
// code but keeps listening, as a resolver does when it times a
// connection out (code 0, DOQ_NO_ERROR) or sheds load.
func (s *DoQServer) CloseConns(code quic.ApplicationErrorCode) {
	s.mu.Lock()
	conns := make([]*quic.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.CloseWithError(code, "")
	}
}

// Kill stops listening and closes every connection, as a crashed
// resolver would.
func (s *DoQServer) Kill() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	s.mu.Unlock()
	s.CloseConns(0)
	s.wg.Wait()
}

func (s *DoQServer) accept(ln *quic.EarlyListener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		s.accepts.Add(1)
		s.mu.Lock()
		if s.ln != ln {
			s.mu.Unlock()
			c.CloseWithError(0, "")
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(2)
		go s.record(c)
		go s.serve(c)
	}
}

// record keeps the connection's state once its handshake completes.
func (s *DoQServer) record(c *quic.Conn) {
	defer s.wg.Done()
	select {
	case <-c.HandshakeComplete():
	case <-c.Context().Done():
		return
	}
	st := c.ConnectionState()
	if !st.TLS.HandshakeComplete {
		return
	}
	s.mu.Lock()
	s.states = append(s.states, st)
	s.mu.Unlock()
}

func (s *DoQServer) serve(c *quic.Conn) {
	defer s.wg.Done()
	defer func() {
		<-c.Context().Done()
		s.mu.Lock()
		delete(s.conns, c)
		s.closes = append(s.closes, context.Cause(c.Context()))
		s.mu.Unlock()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		wg.Go(func() { s.serveStream(c, st) })
	}
}

// serveStream reads one query, up to the end of the stream, and hands it
// to the stream handler or the Handler.
func (s *DoQServer) serveStream(c *quic.Conn, st *quic.Stream) {
	buf, err := ReadMsg(st)
	if err != nil {
		st.CancelRead(0)
		st.CancelWrite(0)
		return
	}
	s.mu.Lock()
	s.received = append(s.received, buf)
	s.mu.Unlock()
	q := new(dns.Msg)
	if err := q.Unpack(buf); err != nil {
		st.CancelWrite(0)
		return
	}
	if sh := s.stream.Load(); sh != nil {
		(*sh)(q, st, c)
		return
	}
	var once sync.Once
	h := *s.handler.Load()
	h(q, func(m *dns.Msg) { once.Do(func() { Reply(st, m) }) })
}

// earlyTrace is a qlog trace that only counts the STREAM frames that
// arrive in 0-RTT packets: the server's view of what a client sent in
// early data, which no connection state tells.
type earlyTrace struct{ n *atomic.Int64 }

func (t earlyTrace) AddProducer() qlogwriter.Recorder { return t }

func (t earlyTrace) RecordEvent(e qlogwriter.Event) {
	p, ok := e.(qlog.PacketReceived)
	if !ok || p.Header.PacketType != qlog.PacketType0RTT {
		return
	}
	for _, f := range p.Frames {
		if _, ok := f.Frame.(*qlog.StreamFrame); ok {
			t.n.Add(1)
		}
	}
}

func (earlyTrace) Close() error { return nil }
