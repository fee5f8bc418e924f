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

	"github.com/dotproxy/dotproxy/config"
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

// Resolver is the chain the listeners call: today the selector itself;
// cache and filter middleware wrap it here.
func (p *Proxy) Resolver() resolver.Resolver {
	return resolver.Chain(p.selector)
}

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
