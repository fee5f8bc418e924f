package dottest

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Handler decides what the server does with one query. It runs in a
// goroutine of its own; it may call reply any number of times (none: a
// silent server), at any time, with any message (a wrong ID, a wrong
// question).
type Handler func(q *dns.Msg, reply func(*dns.Msg))

// Options configures a Server.
type Options struct {
	Cert    tls.Certificate // the certificate presented
	Handler Handler         // nil: Answer("192.0.2.1")
	Addr    string          // listen address; default 127.0.0.1:0
	// MaxVersion caps the TLS version offered (0: Go's default), to stand
	// in for an outdated resolver.
	MaxVersion uint16
}

// Server is an in-process DNS-over-TLS server.
type Server struct {
	tb      testing.TB
	tlsConf *tls.Config
	addr    netip.AddrPort

	handler atomic.Pointer[Handler]
	queries atomic.Int64
	padded  atomic.Int64
	accepts atomic.Int64

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	states []tls.ConnectionState
	wg     sync.WaitGroup
}

// Start starts a server and stops it when the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	s := &Server{
		tb: tb,
		tlsConf: &tls.Config{
			Certificates: []tls.Certificate{opts.Cert},
			NextProtos:   []string{"dot"},
			// Any version a client offers, so that refusing an old one
			// is the client's doing.
			MinVersion: tls.VersionTLS10,
			MaxVersion: opts.MaxVersion,
		},
		conns: map[net.Conn]struct{}{},
	}
	h := opts.Handler
	if h == nil {
		h = Answer("192.0.2.1")
	}
	s.SetHandler(h)
	s.listen(opts.Addr)
	tb.Cleanup(s.Kill)
	return s
}

func (s *Server) listen(addr string) {
	ln, err := tls.Listen("tcp", addr, s.tlsConf)
	if err != nil {
		s.tb.Fatalf("dottest: listening on %s: %v", addr, err)
	}
	s.addr = netip.MustParseAddrPort(ln.Addr().String())
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go s.accept(ln)
}

// Addr is the address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// SetHandler changes what the server does with the queries it reads from
// now on.
func (s *Server) SetHandler(h Handler) { s.handler.Store(&h) }

// Queries counts the queries read so far.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Padded counts the queries that carried EDNS padding to a multiple of
// 128 bytes (RFC 8467).
func (s *Server) Padded() int64 { return s.padded.Load() }

// Accepts counts the TLS connections accepted so far.
func (s *Server) Accepts() int64 { return s.accepts.Load() }

// States returns the TLS state of every connection whose handshake
// completed, oldest first: what the client offered and got (ALPN,
// version, resumption).
func (s *Server) States() []tls.ConnectionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.states)
}

// DropConns closes every open connection but keeps listening, as a
// resolver does when it times a connection out.
func (s *Server) DropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// StopAccepting stops listening but keeps serving the connections that
// are open, as a resolver at its connection limit does; Restart listens
// again.
func (s *Server) StopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

// Kill stops listening and closes every connection, as a crashed
// resolver would; Restart brings it back on the same address.
func (s *Server) Kill() {
	s.StopAccepting()
	s.DropConns()
	s.wg.Wait()
}

// Restart listens again on the address the server had.
func (s *Server) Restart() { s.listen(s.addr.String()) }

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.accepts.Add(1)
		s.mu.Lock()
		if s.ln != ln {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	if tc, ok := c.(*tls.Conn); ok {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		c.SetDeadline(time.Time{})
		s.mu.Lock()
		s.states = append(s.states, tc.ConnectionState())
		s.mu.Unlock()
	}
	var wmu sync.Mutex
	reply := func(m *dns.Msg) {
		buf, err := m.Pack()
		if err != nil {
			return
		}
		out := make([]byte, 2+len(buf))
		binary.BigEndian.PutUint16(out, uint16(len(buf)))
		copy(out[2:], buf)
		wmu.Lock()
		defer wmu.Unlock()
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write(out)
	}
	for {
		buf, err := ReadMsg(c)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		if err := q.Unpack(buf); err != nil {
			continue
		}
		s.queries.Add(1)
		if len(buf)%128 == 0 && hasPadding(q) {
			s.padded.Add(1)
		}
		h := *s.handler.Load()
		go h(q, reply)
	}
}

func hasPadding(m *dns.Msg) bool {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if _, ok := o.(*dns.EDNS0_PADDING); ok {
				return true
			}
		}
	}
	return false
}
