// Package proxy builds a running dotproxy from a validated configuration:
// the upstreams, their selector, the health checker, the filter, the
// cache and the listeners, composed through resolver.Resolver, and swaps
// in a new configuration without dropping a query. It owns the wiring and
// the order of start, reload and shutdown, nothing else: each piece's
// behaviour lives in its own package.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dotproxy/dotproxy/admin"
	"github.com/dotproxy/dotproxy/clients"
	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/buildtime"
	"github.com/dotproxy/dotproxy/listener"
	"github.com/dotproxy/dotproxy/metrics"
	"github.com/dotproxy/dotproxy/querylog"
	"github.com/dotproxy/dotproxy/ratelimit"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// Proxy is a configured dotproxy: listeners in front, the current
// generation of upstreams, filter and cache behind.
type Proxy struct {
	log      *slog.Logger
	version  string
	started  time.Time
	listener *listener.Server
	clock    *upstream.Clock  // judges upstream certificates; lives across reloads
	admin    *admin.Server    // nil when off
	metrics  *metrics.Metrics // lives across reloads
	qlog     *querylog.Logger // nil when off
	// names names clients for the filter's groups, the query log and
	// the status page, following reloads (it asks the current
	// generation); top counts their queries, nil without the admin
	// listener, whose status page alone reads it.
	names *clients.Names
	top   *clients.Top

	// reloadMu serialises reloads. Shutdown never takes it: a reload
	// builds its generation without mu, so that SIGTERM during one is
	// not held up by it.
	reloadMu sync.Mutex
	mu       sync.Mutex    // guards closed and the swap of gen
	closed   bool          // Shutdown has begun
	stopping chan struct{} // closed by Shutdown once the listener has stopped
	gen      atomic.Pointer[generation]

	parts    parts          // who holds each upstream, cache and filter
	retirers sync.WaitGroup // generations being retired; Shutdown waits

	// The rate limiter in use, nil when off, and its options: a reload
	// that leaves them alone keeps it, and what it knows of each prefix.
	// Set at New and by reloads, under reloadMu.
	limiter     *ratelimit.Limiter
	limiterOpts ratelimit.Options
}

var _ resolver.Resolver = (*Proxy)(nil)

// Options are what NewWith takes beside the configuration.
type Options struct {
	Version string       // shown on the status page
	Logger  *slog.Logger // required
	// Now is the clock upstream certificates are judged by, nil for
	// time.Now; a test's way to boot with an unset clock. While it reads
	// earlier than the binary's build time (buildtime.Time), the
	// certificates' dates are judged at the build time (upstream.Clock).
	Now func() time.Time
}

// New builds every component from cfg; nothing listens or dials until
// Start. version is shown on the status page.
func New(cfg *config.Config, version string, log *slog.Logger) (*Proxy, error) {
	return NewWith(cfg, Options{Version: version, Logger: log})
}

// NewWith is New with Options.
func NewWith(cfg *config.Config, opts Options) (*Proxy, error) {
	log := opts.Logger
	p := &Proxy{log: log, version: opts.Version, stopping: make(chan struct{}),
		clock: upstream.NewClock(opts.Now, buildtime.Time(), log)}
	p.names = newNames(p.gen.Load, log)
	g, err := build(cfg, nil, p.gen.Load, p.clock, p.names, log)
	if err != nil {
		return nil, err
	}
	p.gen.Store(g)
	p.parts.hold(g)
	if err := p.newObservers(cfg); err != nil {
		g.stopUnused(nil)
		return nil, err
	}
	lo, err := p.listenerOptions(cfg)
	if err != nil {
		g.stopUnused(nil)
		p.closeQueryLog()
		return nil, err
	}
	obs := []listener.Observer{p.metrics}
	if p.qlog != nil {
		obs = append(obs, p.qlog)
	}
	if cfg.Admin.IsValid() {
		p.top = clients.NewTop(clients.DefaultTopCapacity)
		obs = append(obs, p.top)
	}
	lo.Observer = listener.Observers(obs...)
	p.listener, err = listener.New(lo)
	if err != nil {
		g.stopUnused(nil)
		p.closeQueryLog()
		return nil, fmt.Errorf("building listener: %w", err)
	}
	if p.admin, err = p.newAdmin(); err != nil {
		g.stopUnused(nil)
		p.closeQueryLog()
		return nil, err
	}
	return p, nil
}

func (p *Proxy) closeQueryLog() {
	if p.qlog != nil {
		if err := p.qlog.Close(); err != nil {
			p.log.Warn("closing the query log", "err", err)
		}
	}
}

// listenerOptions returns the listener's options for cfg, with p as the
// resolver, and the rate limiter (kept from the last call when its
// options did not change).
func (p *Proxy) listenerOptions(cfg *config.Config) (listener.Options, error) {
	lim, err := p.rateLimiter(cfg)
	if err != nil {
		return listener.Options{}, err
	}
	return listener.Options{
		Addrs:                 cfg.Listen,
		Resolver:              p,
		Allow:                 cfg.Allow,
		QueryTimeout:          cfg.QueryTimeout,
		TCPIdleTimeout:        cfg.TCP.IdleTimeout,
		MaxTCPConns:           cfg.TCP.MaxConnections,
		MaxTCPConnsPerClient:  cfg.TCP.MaxPerClient,
		MaxTCPInflightPerConn: cfg.TCP.MaxInflightPerConn,
		MaxInflight:           cfg.MaxInflight,
		MaxInflightPerClient:  cfg.MaxInflightPerClient,
		MaxUDPSize:            cfg.MaxUDPSize,
		RateLimiter:           lim,
		Logger:                p.log,
	}, nil
}

// Resolve answers req through the current generation's chain (filter,
// cache, selector). A query that meets a generation just retired by a
// reload moves on to the new one.
func (p *Proxy) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	for {
		g := p.gen.Load()
		resp, ok, err := g.resolve(ctx, req)
		if ok {
			return resp, err
		}
		if p.gen.Load() == g {
			return resolver.Response{}, errStopped // retired with no successor: shut down
		}
	}
}

// errStopped answers a query that arrives after Shutdown.
var errStopped = errors.New("dotproxy is shutting down")

// Start binds the listeners and starts the health checker and the list
// refreshes, logging each upstream (the listener logs its addresses).
func (p *Proxy) Start() error {
	g := p.gen.Load()
	p.logConfig(g.cfg)
	p.started = time.Now()
	if err := p.listener.Start(); err != nil {
		return err
	}
	if p.admin != nil {
		if err := p.admin.Start(); err != nil {
			return err
		}
	}
	g.start(nil)
	p.names.Start()
	return nil
}

func (p *Proxy) logConfig(cfg *config.Config) {
	for _, u := range cfg.Upstreams {
		addr := u.Address.String()
		if u.Host != "" {
			addr = net.JoinHostPort(u.Host, strconv.Itoa(int(u.Port)))
		}
		// upstream and addr first, where scripts reading the log find them.
		p.log.Info("upstream", "upstream", u.Name, "addr", addr, "transport", u.Transport, "path", u.Path,
			"tls_name", u.TLSName, "pinned", len(u.SPKIPins) > 0, "ca_file", u.CAFile, "fallback", u.Fallback,
			"bootstrap", u.Bootstrap)
	}
	logForwarding(p.log, cfg)
	p.log.Info("selection", "policy", cfg.Policy, "timeout", cfg.Timeout, "query_timeout", cfg.QueryTimeout,
		"cache", cfg.Cache.Enabled, "blocklists", len(cfg.Filter.Blocklists))
}

// UDPAddrs is the bound UDP listen addresses.
func (p *Proxy) UDPAddrs() []netip.AddrPort { return p.listener.UDPAddrs() }

// TCPAddrs is the bound TCP listen addresses.
func (p *Proxy) TCPAddrs() []netip.AddrPort { return p.listener.TCPAddrs() }

// Shutdown stops taking queries, lets those in flight finish within ctx,
// then stops probing and refreshing and closes the upstream connections,
// the parts of generations still being retired after a reload included.
// It waits on no reload: one under way finds the proxy closed and drops
// what it built.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	g := p.gen.Load()
	p.mu.Unlock()
	err := p.listener.Shutdown(ctx)
	if p.admin != nil {
		p.admin.Shutdown(ctx)
	}
	p.closeQueryLog()
	p.names.Stop()
	close(p.stopping) // no query is left for a retiring generation to wait on
	g.checker.Stop()
	g.retire(&p.parts, 0, p.stopping)
	p.retirers.Wait()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutting down listeners: %w", err)
	}
	return err
}
