package proxy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dotproxy/dotproxy/config"
)

// Reload swaps in cfg without dropping a query: the new generation is
// built first (an error leaves the running one untouched), unchanged
// upstreams keep their connections and health, and queries in flight
// finish on the generation they started in. Listen addresses are bound
// once: a change to them is logged and needs a restart.
func (p *Proxy) Reload(cfg *config.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("reload: shutting down")
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
	g, err := build(cfg, old, p.gen.Load, p.log)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	lo, err := p.listenerOptions(cfg)
	if err != nil {
		g.stopUnused(old)
		return fmt.Errorf("reload: %w", err)
	}
	if err := p.listener.Reconfigure(lo); err != nil {
		g.stopUnused(old)
		return fmt.Errorf("reload: %w", err)
	}
	old.checker.Stop()
	p.gen.Store(g)
	g.start(old)
	go old.retire(g, cfg.QueryTimeout)

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
