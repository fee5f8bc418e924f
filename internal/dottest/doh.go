package dottest

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// DoHPath is the URL path a DoHServer answers on; others get 404.
const DoHPath = "/dns-query"

// dohMediaType is the DNS message's media type (RFC 8484 §6).
const dohMediaType = "application/dns-message"

// DoHOptions configures a DoHServer.
type DoHOptions struct {
	Cert    tls.Certificate // the certificate presented
	Handler Handler         // nil: Answer("192.0.2.1")
	// HTTP3 serves HTTP/3 over QUIC (UDP) instead of HTTP/2 over TLS.
	HTTP3 bool
	// HTTP1Only serves HTTP/1.1 only, without ALPN, as an old web
	// server does (HTTP/2 only).
	HTTP1Only bool
}

// Response changes how a DoHServer answers: each zero field leaves that
// part of a good answer as it is.
type Response struct {
	Status      int    // default 200
	ContentType string // default application/dns-message
	Body        []byte // default the handler's answer, packed
}

// DoHRequest is a request as a DoHServer received it.
type DoHRequest struct {
	Method, Path, Host string
	Proto              string      // HTTP/2.0 or HTTP/3.0
	Header             http.Header // every header field but the pseudo-headers
	Body               []byte
}

// DoHServer is an in-process DNS-over-HTTPS server, on HTTP/2 or HTTP/3,
// on loopback.
type DoHServer struct {
	http3   bool
	addr    netip.AddrPort
	h2      *http.Server
	h3      *http3.Server
	pc      net.PacketConn
	handler atomic.Pointer[Handler]
	resp    atomic.Pointer[Response]
	drop    atomic.Int64 // requests still to be answered by closing their connection
	reset   atomic.Int64 // requests still to be answered by resetting their stream
	queries atomic.Int64
	padded  atomic.Int64
	accepts atomic.Int64

	mu       sync.Mutex
	requests []DoHRequest
	conns    map[any]func() // open connections, each with its close
}

type connKey struct{}

// StartDoH starts a DoH server and stops it when the test ends.
func StartDoH(tb testing.TB, opts DoHOptions) *DoHServer {
	tb.Helper()
	s := &DoHServer{http3: opts.HTTP3, conns: map[any]func(){}}
	h := opts.Handler
	if h == nil {
		h = Answer("192.0.2.1")
	}
	s.SetHandler(h)
	s.SetResponse(Response{})
	if opts.HTTP3 {
		s.startH3(tb, opts.Cert)
	} else {
		s.startH2(tb, opts.Cert, opts.HTTP1Only)
	}
	return s
}

func (s *DoHServer) startH2(tb testing.TB, cert tls.Certificate, http1Only bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dottest: listening for DoH: %v", err)
	}
	s.addr = netip.MustParseAddrPort(ln.Addr().String())
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(!http1Only)
	s.h2 = &http.Server{
		Handler:   s,
		Protocols: protocols,
		// Refused handshakes are what some tests are about.
		ErrorLog:  log.New(io.Discard, "", 0),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, func() { c.Close() })
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch st {
			case http.StateNew:
				s.accepts.Add(1)
				s.conns[c] = func() { c.Close() }
			case http.StateClosed, http.StateHijacked:
				delete(s.conns, c)
			}
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if http1Only {
			_ = s.h2.Serve(tls.NewListener(ln, s.h2.TLSConfig))
		} else {
			_ = s.h2.ServeTLS(ln, "", "")
		}
	}()
	tb.Cleanup(func() {
		s.h2.Close()
		<-done
	})
}

func (s *DoHServer) startH3(tb testing.TB, cert tls.Certificate) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dottest: listening for DoH over HTTP/3: %v", err)
	}
	s.pc = pc
	s.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	s.h3 = &http3.Server{
		Handler:   s,
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			s.accepts.Add(1)
			closeConn := func() { c.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "") }
			s.mu.Lock()
			s.conns[c] = closeConn
			s.mu.Unlock()
			context.AfterFunc(c.Context(), func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			})
			return context.WithValue(ctx, connKey{}, closeConn)
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.h3.Serve(pc)
	}()
	tb.Cleanup(func() {
		s.h3.Close()
		pc.Close()
		<-done
	})
}

// Addr is the server's address (TCP for HTTP/2, UDP for HTTP/3).
func (s *DoHServer) Addr() netip.AddrPort { return s.addr }

// HTTP3 reports whether the server speaks HTTP/3.
func (s *DoHServer) HTTP3() bool { return s.http3 }

// SetHandler changes what the server answers from now on.
func (s *DoHServer) SetHandler(h Handler) { s.handler.Store(&h) }

// SetResponse changes how the server answers from now on.
func (s *DoHServer) SetResponse(r Response) { s.resp.Store(&r) }

// DropNext makes the server close the connection of each of the next n
// requests instead of answering it, as a server closing a connection
// under a query does.
func (s *DoHServer) DropNext(n int) { s.drop.Store(int64(n)) }

// ResetNext makes the server reset the stream of each of the next n
// requests instead of answering it (RST_STREAM in HTTP/2, a stream error
// in HTTP/3), as a server's per-request timeout does, leaving the
// connection open.
func (s *DoHServer) ResetNext(n int) { s.reset.Store(int64(n)) }

// DropConns closes every open connection, as a server timing them out
// does.
func (s *DoHServer) DropConns() {
	s.mu.Lock()
	closers := make([]func(), 0, len(s.conns))
	for _, c := range s.conns {
		closers = append(closers, c)
	}
	s.mu.Unlock()
	for _, c := range closers {
		c()
	}
}

// Queries counts the DNS queries read.
func (s *DoHServer) Queries() int64 { return s.queries.Load() }

// Padded counts the queries whose wire form was EDNS-padded to a
// multiple of 128 octets (RFC 8467).
func (s *DoHServer) Padded() int64 { return s.padded.Load() }

// Accepts counts the connections accepted.
func (s *DoHServer) Accepts() int64 { return s.accepts.Load() }

// Requests returns every request received, oldest first.
func (s *DoHServer) Requests() []DoHRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ServeHTTP answers one DoH request (RFC 8484, POST only).
func (s *DoHServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, dns.MaxMsgSize+1))
	s.mu.Lock()
	s.requests = append(s.requests, DoHRequest{Method: r.Method, Path: r.URL.RequestURI(),
		Host: r.Host, Proto: r.Proto, Header: r.Header.Clone(), Body: body})
	s.mu.Unlock()
	if err != nil {
		return
	}
	if take(&s.reset) {
		// Both servers reset the request's stream for this panic, and
		// only that stream.
		panic(http.ErrAbortHandler)
	}
	if take(&s.drop) {
		if closeConn, ok := r.Context().Value(connKey{}).(func()); ok {
			closeConn()
		}
		return
	}
	switch {
	case r.URL.Path != DoHPath:
		http.Error(w, "not found", http.StatusNotFound)
		return
	case r.Method != http.MethodPost:
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	case r.Header.Get("Content-Type") != dohMediaType:
		http.Error(w, "not a DNS message", http.StatusUnsupportedMediaType)
		return
	}
	q := new(dns.Msg)
	if err := q.Unpack(body); err != nil || len(q.Question) == 0 {
		http.Error(w, "bad DNS message", http.StatusBadRequest)
		return
	}
	s.queries.Add(1)
	if len(body)%128 == 0 && hasPadding(q) {
		s.padded.Add(1)
	}
	answers := make(chan *dns.Msg, 1)
	h := *s.handler.Load()
	go h(q, func(m *dns.Msg) {
		select {
		case answers <- m:
		default: // a second reply has nowhere to go over HTTP
		}
	})
	var m *dns.Msg
	select {
	case m = <-answers:
	case <-r.Context().Done():
		return
	}
	s.write(w, m)
}

// take reports whether n, a count of requests still to be treated so,
// was positive, and counts this one down.
func take(n *atomic.Int64) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

func (s *DoHServer) write(w http.ResponseWriter, m *dns.Msg) {
	resp := *s.resp.Load()
	body := resp.Body
	if body == nil {
		var err error
		if body, err = m.Pack(); err != nil {
			http.Error(w, "packing the answer", http.StatusInternalServerError)
			return
		}
	}
	if resp.ContentType == "" {
		resp.ContentType = dohMediaType
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	w.Header().Set("Content-Type", resp.ContentType)
	w.WriteHeader(resp.Status)
	_, _ = w.Write(body)
}
