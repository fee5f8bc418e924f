// Package proxy builds a running dotproxy from a validated configuration:
// the upstreams, their selector, the health checker and the listeners,
// composed through resolver.Resolver. It owns the wiring and the order of
// start and shutdown, nothing else: each piece's behaviour lives in its
// own package.
package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/filter"
	"github.com/dotproxy/dotproxy/health"
	"github.com/dotproxy/dotproxy/listener"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// Proxy is a configured dotproxy: listeners in front, upstreams behind.
type Proxy struct {
	log      *slog.Logger
	cfg      *config.Config
	ups      []*upstream.Upstream
	selector *upstream.Selector
	checker  *health.Checker
	filter   *filter.Filter
	cache    *cache.Cache // nil when disabled
	chain    resolver.Resolver
	listener *listener.Server
}

// New builds every component from cfg; nothing listens or dials until
// Start.
func New(cfg *config.Config, log *slog.Logger) (*Proxy, error) {
	p := &Proxy{log: log, cfg: cfg}
	for _, uc := range cfg.Upstreams {
		u, err := newUpstream(uc, cfg, log)
		if err != nil {
			p.closeUpstreams()
			return nil, err
		}
		p.ups = append(p.ups, u)
	}
	policy, err := upstream.NewPolicy(cfg.Policy)
	if err != nil {
		p.closeUpstreams()
		return nil, err
	}
	p.selector, err = upstream.NewSelector(upstream.SelectorOptions{
		Policy:         policy,
		AttemptTimeout: cfg.Timeout,
		HedgeDelay:     cfg.HedgeDelay,
		Logger:         log,
	}, p.ups...)
	if err != nil {
		p.closeUpstreams()
		return nil, err
	}
	if err := p.buildChain(cfg, log); err != nil {
		p.closeUpstreams()
		return nil, err
	}
	targets := make([]health.Target, len(p.ups))
	for i, u := range p.ups {
		targets[i] = u
	}
	p.checker = health.New(health.Options{
		Interval:     cfg.Health.Interval,
		DownInterval: cfg.Health.DownInterval,
		Timeout:      cfg.Health.Timeout,
		Fall:         cfg.Health.Fall,
		Rise:         cfg.Health.Rise,
		ProbeName:    cfg.Health.ProbeName,
		ProbeType:    cfg.Health.ProbeType,
		Logger:       log,
	}, targets...)
	p.listener, err = listener.New(listener.Options{
		Addrs:                 cfg.Listen,
		Resolver:              p.Resolver(),
		Allow:                 cfg.Allow,
		QueryTimeout:          cfg.QueryTimeout,
		TCPIdleTimeout:        cfg.TCP.IdleTimeout,
		MaxTCPConns:           cfg.TCP.MaxConnections,
		MaxTCPConnsPerClient:  cfg.TCP.MaxPerClient,
		MaxTCPInflightPerConn: cfg.TCP.MaxInflightPerConn,
		Logger:                log,
	})
	if err != nil {
		p.closeUpstreams()
		return nil, fmt.Errorf("building listener: %w", err)
	}
	return p, nil
}

func newUpstream(uc config.Upstream, cfg *config.Config, log *slog.Logger) (*upstream.Upstream, error) {
	var roots *x509.CertPool
	if uc.CAFile != "" {
		pem, err := os.ReadFile(uc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: reading ca_file: %w", uc.Name, err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream %s: ca_file %s holds no PEM certificate", uc.Name, uc.CAFile)
		}
	}
	return upstream.New(upstream.Options{
		Name:        uc.Name,
		Addr:        uc.Address,
		TLSName:     uc.TLSName,
		RootCAs:     roots,
		SPKIPins:    uc.SPKIPins,
		MaxConns:    cfg.Connections.MaxPerUpstream,
		IdleTimeout: cfg.Connections.IdleTimeout,
		DialTimeout: cfg.Connections.DialTimeout,
		Logger:      log,
	})
}

// buildChain builds the filter and the cache around the selector: a
// query meets the filter first (blocked and local names never reach the
// cache or an upstream), then the cache, then the selector.
func (p *Proxy) buildChain(cfg *config.Config, log *slog.Logger) error {
	groups := make([]filter.Group, len(cfg.Filter.Groups))
	for i, g := range cfg.Filter.Groups {
		groups[i] = filter.Group{Name: g.Name, Clients: g.Clients, Blocklists: g.Blocklists, Allowlists: g.Allowlists}
	}
	f, err := filter.New(filter.Options{
		Blocklists:    cfg.Filter.Blocklists,
		Allowlists:    cfg.Filter.Allowlists,
		BlockResponse: cfg.Filter.BlockResponse,
		Refresh:       cfg.Filter.Refresh,
		CacheDir:      cfg.Filter.CacheDir,
		LocalRecords:  cfg.LocalRecords,
		Groups:        groups,
		HTTPClient:    listHTTPClient(p.selector),
		Logger:        log,
	})
	if err != nil {
		return fmt.Errorf("building filter: %w", err)
	}
	p.filter = f
	mw := []resolver.Middleware{f.Middleware()}
	if c := cfg.Cache; c.Enabled {
		p.cache = cache.New(cache.Options{
			Size:        c.Size,
			MaxBytes:    c.MaxBytes,
			MinTTL:      c.MinTTL,
			MaxTTL:      c.MaxTTL,
			NegativeTTL: orNegative(c.NegativeTTL),
			ServfailTTL: orNegative(c.ServfailTTL),
			Prefetch:    c.Prefetch,
			ServeStale:  c.ServeStale,
			StaleMaxAge: c.StaleMaxAge,
			Logger:      log,
		})
		mw = append(mw, p.cache.Middleware())
	}
	p.chain = resolver.Chain(p.selector, mw...)
	return nil
}

// orNegative maps a configured 0 ("do not cache") to the cache's
// negative value: its zero means "the default".
func orNegative(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Resolver is the chain the listeners call: filter, cache, selector.
func (p *Proxy) Resolver() resolver.Resolver { return p.chain }

// Start binds the listeners and starts the health checker, logging each
// upstream (the listener logs its addresses).
func (p *Proxy) Start() error {
	for _, u := range p.cfg.Upstreams {
		p.log.Info("upstream", "upstream", u.Name, "addr", u.Address, "tls_name", u.TLSName,
			"pinned", len(u.SPKIPins) > 0, "ca_file", u.CAFile)
	}
	p.log.Info("selection", "policy", p.cfg.Policy, "timeout", p.cfg.Timeout, "query_timeout", p.cfg.QueryTimeout)
	if err := p.listener.Start(); err != nil {
		return err
	}
	p.checker.Start()
	p.filter.Start(context.Background())
	return nil
}

// UDPAddrs and TCPAddrs are the bound listen addresses.
func (p *Proxy) UDPAddrs() []netip.AddrPort { return p.listener.UDPAddrs() }

// TCPAddrs is the bound TCP listen addresses.
func (p *Proxy) TCPAddrs() []netip.AddrPort { return p.listener.TCPAddrs() }

// Shutdown stops taking queries, lets those in flight finish within ctx,
// then stops probing and closes the upstream connections.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.listener.Shutdown(ctx)
	p.filter.Stop()
	if p.cache != nil {
		p.cache.Close()
	}
	p.checker.Stop()
	p.closeUpstreams()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutting down listeners: %w", err)
	}
	return err
}

func (p *Proxy) closeUpstreams() {
	for _, u := range p.ups {
		u.Close()
	}
}
