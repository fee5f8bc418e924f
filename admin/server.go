// Package admin is dotproxy's HTTP admin listener: the health and
// readiness probes (/healthz, /readyz), the Prometheus scrape endpoint
// (/metrics), the status snapshot as JSON (/api/status) and a small
// self-refreshing status page (/) with its embedded CSS and JavaScript.
//
// It owns the HTTP surface only: routing, methods, security headers,
// timeouts, rendering. It does not collect any figure, decide readiness
// or build the metrics registry; the caller hands those in through
// Options (a Status func, a Ready func, a metrics http.Handler), and
// chooses the address (config's default is loopback).
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Timeouts of the HTTP server. Every request here is small and answered
// from memory, so the bounds only guard against slow or stuck clients.
const (
	// readHeaderTimeout bounds a client that opens a connection and
	// trickles its request line and headers (Slowloris).
	readHeaderTimeout = 5 * time.Second
	// readTimeout bounds reading a whole request; GET requests have no
	// body to speak of.
	readTimeout = 10 * time.Second
	// writeTimeout bounds one response, a Prometheus scrape of a large
	// registry included (Prometheus' own default scrape timeout is 10 s).
	writeTimeout = 30 * time.Second
	// idleTimeout closes kept-alive connections of a closed browser tab
	// or a scraper that went away; the page polls far more often.
	idleTimeout = 60 * time.Second
	// maxHeaderBytes: browsers and probes send well under 8 KiB.
	maxHeaderBytes = 64 << 10
)

// Options configures a Server.
type Options struct {
	// Addr is the TCP address to listen on. Required; config defaults it
	// to 127.0.0.1:8053. Port 0 picks a free port (see Server.Addr).
	Addr netip.AddrPort
	// Metrics serves /metrics (normally the Prometheus handler). Nil:
	// /metrics answers 404.
	Metrics http.Handler
	// Status returns a snapshot for / and /api/status. Required. It is
	// called once per request, possibly from several goroutines at once,
	// and should be quick: it reads counters, it does not probe.
	Status func() Status
	// Ready returns nil when the proxy can answer queries (listeners
	// bound, at least one upstream healthy), otherwise an error saying
	// why not. Called once per /readyz request. Nil: always ready.
	Ready func() error
	// Hosts returns the names, besides IP literals and localhost, that a
	// request's Host header may give (lower case, no trailing dot), such
	// as a reverse proxy's; any other Host gets 403 (see checkHost).
	// Called once per request whose Host is a name, so a reload applies
	// at once. Nil: none.
	Hosts func() []string
	// Logger receives the listener's start and its errors. Nil: discard.
	Logger *slog.Logger
}

// Server is the admin HTTP listener. Create it with New, then Start it;
// Shutdown stops it.
type Server struct {
	opts Options
	log  *slog.Logger
	http *http.Server

	mu    sync.Mutex
	ln    net.Listener  // set by Start
	done  chan struct{} // closed when Serve has returned
	state serverState
}

// serverState is where a Server is in its one-way life.
type serverState int

const (
	stateNew serverState = iota
	stateStarted
	stateStopped
)

// New checks opts and builds a Server; nothing is bound until Start.
func New(opts Options) (*Server, error) {
	if !opts.Addr.IsValid() {
		return nil, errors.New("admin: Options.Addr is required")
	}
	if opts.Status == nil {
		return nil, errors.New("admin: Options.Status is required")
	}
	if opts.Ready == nil {
		opts.Ready = func() error { return nil }
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{opts: opts, log: log}
	s.http = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Start binds Options.Addr and serves in the background. The error, if
// any, names the address (e.g. it is taken). A Server starts once.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("admin: server already started or shut down")
	}
	ln, err := net.Listen("tcp", s.opts.Addr.String())
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	s.ln, s.done, s.state = ln, make(chan struct{}), stateStarted
	s.log.Info("admin listening", "addr", ln.Addr().String())
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("admin listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on: the bound one (with the
// port chosen when Options.Addr had port 0) once started, Options.Addr
// before.
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return s.opts.Addr
	}
	if a, ok := s.ln.Addr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return s.opts.Addr
}

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight to finish, then closes what is left. It returns
// ctx's error if it had to cut requests short. Shutdown before Start, or
// twice, does nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.state == stateStarted
	s.state = stateStopped
	s.mu.Unlock()
	if !started {
		return nil
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		// Requests still running when ctx ended: close their
		// connections, so Serve returns and no client waits on.
		s.http.Close()
	}
	<-s.done
	return err
}
