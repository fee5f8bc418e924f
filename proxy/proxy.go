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
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dotproxy/dotproxy/admin"
	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/listener"
	"github.com/dotproxy/dotproxy/metrics"
	"github.com/dotproxy/dotproxy/querylog"
	"github.com/dotproxy/dotproxy/resolver"
)

// Proxy is a configured dotproxy: listeners in front, the current
// generation of upstreams, filter and cache behind.
type Proxy struct {
	log      *slog.Logger
	version  string
	started  time.Time
	listener *listener.Server
	admin    *admin.Server    // nil when off
	metrics  *metrics.Metrics // lives across reloads
	qlog     *querylog.Logger // nil when off

	mu     sync.Mutex // serialises Reload and Shutdown
	closed bool       // Shutdown has begun
	gen    atomic.Pointer[generation]
}

var _ resolver.Resolver = (*Proxy)(nil)

// New builds every component from cfg; nothing listens or dials until
// Start. version is shown on the status page.
func New(cfg *config.Config, version string, log *slog.Logger) (*Proxy, error) {
	p := &Proxy{log: log, version: version}
	g, err := build(cfg, nil, p.gen.Load, log)
	if err != nil {
		return nil, err
	}
	p.gen.Store(g)
	if err := p.newObservers(cfg); err != nil {
		g.stopUnused(nil)
		return nil, err
	}
	lo := listenerOptions(cfg, p, log)
	if p.qlog != nil {
		lo.Observer = listener.Observers(p.metrics, p.qlog)
	} else {
		lo.Observer = p.metrics
	}
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

func listenerOptions(cfg *config.Config, r resolver.Resolver, log *slog.Logger) listener.Options {
	return listener.Options{
		Addrs:                 cfg.Listen,
		Resolver:              r,
		Allow:                 cfg.Allow,
		QueryTimeout:          cfg.QueryTimeout,
		TCPIdleTimeout:        cfg.TCP.IdleTimeout,
		MaxTCPConns:           cfg.TCP.MaxConnections,
		MaxTCPConnsPerClient:  cfg.TCP.MaxPerClient,
		MaxTCPInflightPerConn: cfg.TCP.MaxInflightPerConn,
		Logger:                log,
	}
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
	return nil
}

func (p *Proxy) logConfig(cfg *config.Config) {
	for _, u := range cfg.Upstreams {
		p.log.Info("upstream", "upstream", u.Name, "addr", u.Address, "tls_name", u.TLSName,
			"pinned", len(u.SPKIPins) > 0, "ca_file", u.CAFile)
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
// then stops probing and refreshing and closes the upstream connections.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	err := p.listener.Shutdown(ctx)
	if p.admin != nil {
		p.admin.Shutdown(ctx)
	}
	p.closeQueryLog()
	g := p.gen.Load()
	g.checker.Stop()
	g.retire(nil, 0)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutting down listeners: %w", err)
	}
	return err
}
