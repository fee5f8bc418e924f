// Package listener serves plain DNS to LAN clients over UDP and TCP.
//
// It owns the client-facing sockets (binding, read loops, TCP connection
// and in-flight limits, graceful shutdown), the validation of what clients
// send (access list, malformed or unsupported queries) and the shaping of
// what they get back (ID and question echoed, EDNS for a plain-DNS client,
// truncation to the client's UDP size). It parses every valid query once
// into a resolver.Request and hands it to a resolver.Resolver: first in
// the goroutine that read it, Inline, then, when the answer needs a wait,
// in a worker with the query's own deadline. It does not resolve, cache
// or filter anything itself.
package listener

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dotproxy/dotproxy/internal/loglimit"
)

// Server answers plain DNS on UDP and TCP. Create it with New, then call
// Start and, when done, Shutdown.
type Server struct {
	opts Options // as given to New; what Reconfigure may change is read from live
	live atomic.Pointer[settings]
	log  *slog.Logger

	ctx    context.Context // parent of every query's context
	cancel context.CancelFunc

	done   chan struct{} // closed when Shutdown begins: read nothing more
	udpSem chan struct{} // one token per UDP query being answered
	budget *budget       // queries in workers: all together and per client
	jobs   chan job      // queries handed to idle workers

	// wg counts every goroutine the server starts. Each is started by
	// Start or by a goroutine already counted, so Add never races Wait.
	wg sync.WaitGroup

	capWarn, acceptWarn, readWarn loglimit.Limiter

	rateDropped, rateSlipped atomic.Uint64 // UDP answers the rate limiter held back
	shareDropped             atomic.Uint64 // UDP queries dropped, their client at its share of the budget

	// pending holds the queries handed to workers and not yet answered,
	// for Shutdown to answer when its deadline comes first; abandoned is
	// set then, under pmu, and the answers still to come are dropped.
	pmu       sync.Mutex
	pending   map[*query]job
	abandoned atomic.Bool

	mu        sync.Mutex
	state     state
	udp       []*udpSocket
	tcp       []*net.TCPListener
	conns     map[*tcpConn]struct{}
	perClient map[netip.Addr]int
}

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopped
)

// New checks opts, fills in the defaults and returns a Server that is not
// serving yet.
func New(opts Options) (*Server, error) {
	opts, err := normalize(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		udpSem:    make(chan struct{}, opts.MaxUDPInflight),
		budget:    newBudget(opts.MaxInflight, opts.MaxInflightPerClient),
		jobs:      make(chan job),
		conns:     make(map[*tcpConn]struct{}),
		perClient: make(map[netip.Addr]int),
		pending:   make(map[*query]job),
	}
	s.live.Store(newSettings(opts))
	return s, nil
}

// ErrAddrsChanged is Reconfigure's answer to other listen addresses: the
// sockets are bound once, at Start.
var ErrAddrsChanged = errors.New("listener: listen addresses cannot change while serving")

// Reconfigure applies new options to a serving Server at once: the
// resolver, the access list, the query timeout, the TCP limits (a
// lower cap closes no open connection; it refuses new ones; the idle
// timeout applies from each connection's next read or write), the UDP
// answer size and the rate limiter. Queries already being answered
// finish as they started. The addresses, the in-flight caps
// (MaxUDPInflight, MaxInflight, MaxInflightPerClient), the logger and
// the observer stay as New set them: other addresses return
// ErrAddrsChanged and change nothing.
func (s *Server) Reconfigure(opts Options) error {
	opts, err := normalize(opts)
	if err != nil {
		return err
	}
	if !slices.Equal(opts.Addrs, s.opts.Addrs) {
		return ErrAddrsChanged
	}
	s.live.Store(newSettings(opts))
	return nil
}

// Start binds every address over UDP and TCP and starts serving. If an
// address cannot be bound, nothing is left bound and the error names it;
// the exception is an unspecified IPv6 address on a host without IPv6,
// which is skipped with a warning when another address did bind.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("listener: Start called twice or after Shutdown")
	}
	if err := s.bindAll(); err != nil {
		return err
	}
	s.state = stateRunning
	// An address's sockets (one per CPU, SO_REUSEPORT) are bound one
	// after another: one line for them all.
	for i := 0; i < len(s.udp); {
		addr, sockets := s.udp[i].addr(), 0
		for ; i < len(s.udp) && s.udp[i].addr() == addr; i++ {
			s.wg.Add(1)
			go s.serveUDP(s.udp[i])
			sockets++
		}
		s.log.Info("serving DNS", "addr", addr, "transport", "udp", "sockets", sockets)
	}
	for _, ln := range s.tcp {
		s.log.Info("serving DNS", "addr", ln.Addr().String(), "transport", "tcp")
		s.wg.Add(1)
		go s.acceptTCP(ln)
	}
	return nil
}

// UDPAddrs returns the bound UDP addresses, with port 0 resolved. It is
// empty before Start.
func (s *Server) UDPAddrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	var addrs []netip.AddrPort
	for _, u := range s.udp {
		if a := u.addr(); !slices.Contains(addrs, a) { // several sockets share one
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// TCPAddrs returns the bound TCP addresses, with port 0 resolved. It is
// empty before Start.
func (s *Server) TCPAddrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	var addrs []netip.AddrPort
	for _, ln := range s.tcp {
		addrs = append(addrs, ln.Addr().(*net.TCPAddr).AddrPort())
	}
	return addrs
}

// aLongTimeAgo is a deadline in the past: setting it makes a blocked read
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// closing reports whether Shutdown has begun.
func (s *Server) closing() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// pause waits d, or less if Shutdown begins; it slows a loop that keeps
// failing (out of file descriptors) without delaying shutdown.
func (s *Server) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}
