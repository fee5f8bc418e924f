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
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/loglimit"
	"github.com/dotproxy/dotproxy/ratelimit"
	"github.com/dotproxy/dotproxy/resolver"
)

// Defaults for the zero values of Options.
const (
	// DefaultQueryTimeout is the default Options.QueryTimeout: under the
	// 5s a typical stub resolver waits before it retries.
	DefaultQueryTimeout = 4 * time.Second
	// DefaultTCPIdleTimeout is the default Options.TCPIdleTimeout.
	DefaultTCPIdleTimeout = 10 * time.Second
	// DefaultMaxTCPConns is the default Options.MaxTCPConns.
	DefaultMaxTCPConns = 1000
	// DefaultMaxTCPConnsPerClient is the default Options.MaxTCPConnsPerClient.
	DefaultMaxTCPConnsPerClient = 64
	// DefaultMaxTCPInflightPerConn is the default Options.MaxTCPInflightPerConn.
	DefaultMaxTCPInflightPerConn = 100
	// DefaultMaxUDPInflight is the default Options.MaxUDPInflight.
	DefaultMaxUDPInflight = 2048
	// DefaultMaxInflight is the default Options.MaxInflight.
	DefaultMaxInflight = 2048
	// DefaultMaxInflightPerClient is the default
	// Options.MaxInflightPerClient: a LAN client rarely waits on more
	// than a few dozen answers at once (and may borrow beyond its share
	// when alone), and 16 clients at their share hold less than half of
	// DefaultMaxInflight, which keeps the upstreams' queues short for
	// everyone else.
	DefaultMaxInflightPerClient = 50
	// DefaultMaxUDPSize is the default Options.MaxUDPSize: the DNS Flag
	// Day 2020 size, which BIND caps UDP answers at too.
	DefaultMaxUDPSize = defaultUDPSize
)

// Options configures a Server. Zero values mean the defaults above.
type Options struct {
	// Addrs are the addresses to serve on, each over UDP and TCP. Port 0
	// picks a free port (tests); IPv4 and IPv6 addresses bind separately,
	// so 0.0.0.0:53 and [::]:53 coexist.
	Addrs []netip.AddrPort

	// Resolver answers every valid query. Required.
	Resolver resolver.Resolver

	// Allow lists the client networks that may query; others get
	// REFUSED. Nil means DefaultAllow; an empty non-nil list refuses all.
	Allow []netip.Prefix

	// QueryTimeout is the deadline of each query's context.
	QueryTimeout time.Duration

	// TCPIdleTimeout closes a TCP connection that has nothing in flight
	// and has sent nothing for this long. It also bounds how long a
	// client may take to send one message or to accept one answer.
	TCPIdleTimeout time.Duration

	// MaxTCPConns caps the open TCP connections of all clients together.
	MaxTCPConns int

	// MaxTCPConnsPerClient caps the open TCP connections of one client IP.
	MaxTCPConnsPerClient int

	// MaxTCPInflightPerConn caps the pipelined queries being answered on
	// one TCP connection; at the cap the server stops reading from it.
	MaxTCPInflightPerConn int

	// MaxUDPInflight caps the UDP queries being answered at once; at the
	// cap the server stops reading datagrams.
	MaxUDPInflight int

	// MaxInflight caps the queries being answered in workers (those
	// that wait on an upstream; answers the chain has at once, such as
	// cache hits, are not counted), over UDP and TCP together. It bounds
	// the memory queries take, whatever the clients send. At the cap,
	// the server stops reading until an answer is done.
	MaxInflight int

	// MaxInflightPerClient caps the queries of one client IP (one /64
	// for IPv6) among MaxInflight once a quarter of MaxInflight is in
	// use, so that no client takes all of it; below that, a client alone
	// (a forwarder sending a whole LAN's queries) may go beyond. At the
	// cap a client's TCP connections are read no further, and its UDP
	// queries are dropped.
	MaxInflightPerClient int

	// MaxUDPSize caps the size of an answer over UDP, whatever buffer
	// size the client advertises: a larger answer is truncated (TC), for
	// the client to ask again over TCP. It keeps answers unfragmented
	// and bounds what a query with a forged source can send a victim.
	MaxUDPSize int

	// RateLimiter, when set, is asked about every answer over UDP, and
	// the answers it limits are dropped or slip out truncated (RRL).
	// Nil limits nothing. Answers over TCP are never limited: a TCP
	// client has proven its address.
	RateLimiter *ratelimit.Limiter

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger

	// Observer, when set, is told about every answered query (metrics,
	// query log); see Observer for what it may do. Nil costs nothing.
	// Like the addresses it is fixed at New: Reconfigure ignores it.
	Observer Observer
}

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

// settings are the options Reconfigure can change while serving.
type settings struct {
	resolver                          resolver.Resolver
	allow                             acl
	queryTimeout, tcpIdle             time.Duration
	maxConns, perClient, inflightConn int
	maxUDPSize                        int
	limiter                           *ratelimit.Limiter // nil: off
	deadlines                         *deadlines         // of queryTimeout
}

func newSettings(o Options) *settings {
	return &settings{
		resolver:     o.Resolver,
		allow:        newACL(o.Allow),
		queryTimeout: o.QueryTimeout,
		deadlines:    newDeadlines(o.QueryTimeout),
		tcpIdle:      o.TCPIdleTimeout,
		maxConns:     o.MaxTCPConns,
		perClient:    o.MaxTCPConnsPerClient,
		inflightConn: o.MaxTCPInflightPerConn,
		maxUDPSize:   o.MaxUDPSize,
		limiter:      o.RateLimiter,
	}
}

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

// normalize checks opts and fills in the defaults.
func normalize(opts Options) (Options, error) {
	if len(opts.Addrs) == 0 {
		return opts, errors.New("listener: no addresses to listen on")
	}
	if opts.Resolver == nil {
		return opts, errors.New("listener: no resolver")
	}
	if opts.QueryTimeout < 0 || opts.TCPIdleTimeout < 0 || opts.MaxTCPConns < 0 ||
		opts.MaxTCPConnsPerClient < 0 || opts.MaxTCPInflightPerConn < 0 || opts.MaxUDPInflight < 0 ||
		opts.MaxInflight < 0 || opts.MaxInflightPerClient < 0 {
		return opts, errors.New("listener: negative timeout or limit")
	}
	if opts.MaxUDPSize != 0 && (opts.MaxUDPSize < dns.MinMsgSize || opts.MaxUDPSize > maxUDPPayload) {
		return opts, fmt.Errorf("listener: MaxUDPSize %d is out of range %d-%d", opts.MaxUDPSize, dns.MinMsgSize, maxUDPPayload)
	}
	opts.Addrs = append([]netip.AddrPort(nil), opts.Addrs...)
	setDefault(&opts.QueryTimeout, DefaultQueryTimeout)
	setDefault(&opts.TCPIdleTimeout, DefaultTCPIdleTimeout)
	setDefault(&opts.MaxTCPConns, DefaultMaxTCPConns)
	setDefault(&opts.MaxTCPConnsPerClient, DefaultMaxTCPConnsPerClient)
	setDefault(&opts.MaxTCPInflightPerConn, DefaultMaxTCPInflightPerConn)
	setDefault(&opts.MaxUDPInflight, DefaultMaxUDPInflight)
	setDefault(&opts.MaxUDPSize, DefaultMaxUDPSize)
	setDefault(&opts.MaxInflight, DefaultMaxInflight)
	setDefault(&opts.MaxInflightPerClient, DefaultMaxInflightPerClient)
	if opts.Allow == nil {
		opts.Allow = DefaultAllow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
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
	for i, u := range s.udp {
		s.wg.Add(1)
		go s.serveUDP(u)
		// An address's sockets (one per CPU, SO_REUSEPORT) are bound
		// one after another: one line for them all.
		if n := len(s.udp); i == n-1 || s.udp[i+1].addr() != u.addr() {
			sockets := 1
			for j := i - 1; j >= 0 && s.udp[j].addr() == u.addr(); j-- {
				sockets++
			}
			s.log.Info("serving DNS", "addr", u.addr(), "transport", "udp", "sockets", sockets)
		}
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
