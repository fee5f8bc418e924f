package proxy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/listener"
)

// Reload swaps in cfg without dropping a query: the new generation is
// built first (an error leaves the running one untouched), unchanged
// upstreams keep their connections and health, and queries in flight
// finish on the generation they started in. Listen addresses are bound
// once: a change to them is logged and needs a restart.
//
// Nothing in it waits on the network: the new generation's lists load in
// the background (taking over the old one's lists as they are), and the
// lock Shutdown takes is held only for the swap.
func (p *Proxy) Reload(cfg *config.Config) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	if p.isClosed() {
		return errReloadClosed
	}
	old := p.gen.Load()
	if !slices.Equal(cfg.Listen, old.cfg.Listen) {
		p.log.Warn("listen addresses changed in the configuration; restart dotproxy to apply them",
			"listening", old.cfg.Listen, "configured", cfg.Listen)
		c := *cfg
		c.Listen = old.cfg.Listen
		cfg = &c
	}
	if cfg.Admin != old.cfg.Admin {
		p.log.Warn("admin address changed in the configuration; restart dotproxy to apply it",
			"listening", old.cfg.Admin, "configured", cfg.Admin)
		c := *cfg
		c.Admin = old.cfg.Admin
		cfg = &c
	}
	if cfg.MaxInflight != old.cfg.MaxInflight || cfg.MaxInflightPerClient != old.cfg.MaxInflightPerClient {
		p.log.Warn("max_inflight or max_inflight_per_client changed in the configuration; restart dotproxy to apply them")
		c := *cfg
		c.MaxInflight, c.MaxInflightPerClient = old.cfg.MaxInflight, old.cfg.MaxInflightPerClient
		cfg = &c
	}
	if cfg.QueryLog != old.cfg.QueryLog {
		p.log.Warn("query_log changed in the configuration; restart dotproxy to apply it")
		c := *cfg
		c.QueryLog = old.cfg.QueryLog
		cfg = &c
	}
	g, err := build(cfg, old, p.gen.Load, p.clock, p.names, p.log)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	lo, err := p.listenerOptions(cfg)
	if err != nil {
		g.stopUnused(old)
		return fmt.Errorf("reload: %w", err)
	}
	if err := p.swap(old, g, lo); err != nil {
		g.stopUnused(old)
		return err
	}

	kept := 0
	for _, u := range g.ups {
		if slices.Contains(old.ups, u) {
			kept++
		}
	}
	p.log.Info("configuration reloaded", "upstreams", len(g.ups), "kept", kept,
		"new", len(g.ups)-kept, "removed", len(old.ups)-kept, "policy", cfg.Policy,
		"filter_reloaded", g.filter != old.filter, "cache_rebuilt", g.cache != old.cache)
	return nil
}

// errReloadClosed is Reload's answer once Shutdown has begun.
var errReloadClosed = errors.New("reload: shutting down")

func (p *Proxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// swap makes g, built from old, the serving generation, with the
// listener reconfigured to lo, and retires old in the background: its
// parts that g does not hold are closed once its last query has finished
// (or the query timeout has passed).
func (p *Proxy) swap(old, g *generation, lo listener.Options) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errReloadClosed
	}
	if err := p.listener.Reconfigure(lo); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	old.checker.Stop()
	p.parts.hold(g)
	p.gen.Store(g)
	g.start(old)
	p.retirers.Add(1)
	go func() {
		defer p.retirers.Done()
		// The old generation's queries run to their own deadline,
		// which may be longer than the new one.
		old.retire(&p.parts, max(old.cfg.QueryTimeout, g.cfg.QueryTimeout)+retireMargin, p.stopping)
	}()
	return nil
}
