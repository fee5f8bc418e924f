package listener

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/miekg/dns"

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
	opts.QueryTimeout = cmp.Or(opts.QueryTimeout, DefaultQueryTimeout)
	opts.TCPIdleTimeout = cmp.Or(opts.TCPIdleTimeout, DefaultTCPIdleTimeout)
	opts.MaxTCPConns = cmp.Or(opts.MaxTCPConns, DefaultMaxTCPConns)
	opts.MaxTCPConnsPerClient = cmp.Or(opts.MaxTCPConnsPerClient, DefaultMaxTCPConnsPerClient)
	opts.MaxTCPInflightPerConn = cmp.Or(opts.MaxTCPInflightPerConn, DefaultMaxTCPInflightPerConn)
	opts.MaxUDPInflight = cmp.Or(opts.MaxUDPInflight, DefaultMaxUDPInflight)
	opts.MaxUDPSize = cmp.Or(opts.MaxUDPSize, DefaultMaxUDPSize)
	opts.MaxInflight = cmp.Or(opts.MaxInflight, DefaultMaxInflight)
	opts.MaxInflightPerClient = cmp.Or(opts.MaxInflightPerClient, DefaultMaxInflightPerClient)
	if opts.Allow == nil {
		opts.Allow = DefaultAllow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts, nil
}
