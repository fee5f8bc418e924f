package proxy

import (
	"fmt"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/filter"
	"github.com/dotproxy/dotproxy/metrics"
	"github.com/dotproxy/dotproxy/querylog"
	"github.com/dotproxy/dotproxy/upstream"
)

// newObservers builds what watches every answered query: the metrics,
// which read the current generation at each scrape and so follow
// reloads, and the query log when it is on.
func (p *Proxy) newObservers(cfg *config.Config) error {
	if q := cfg.QueryLog; q.Enabled {
		ql, err := querylog.New(querylog.Options{Path: q.Path, Anonymize: q.Anonymize, Names: p.names, Logger: p.log})
		if err != nil {
			return fmt.Errorf("opening the query log: %w", err)
		}
		p.qlog = ql
	}
	opts := metrics.Options{
		Upstreams: func() []upstream.UpstreamStats {
			g := p.gen.Load()
			out := make([]upstream.UpstreamStats, len(g.ups))
			for i, u := range g.ups {
				out[i] = u.Stats()
			}
			return out
		},
		Cache: func() (cache.Stats, bool) {
			if c := p.gen.Load().cache; c != nil {
				return c.Stats(), true
			}
			return cache.Stats{}, false
		},
		Filter:     func() (filter.Stats, bool) { return p.gen.Load().filter.Stats(), true },
		ClockGrace: p.clock.Graced,
		RateLimited: func() (dropped, slipped uint64) {
			if p.listener == nil {
				return 0, 0
			}
			return p.listener.RateLimited()
		},
		ShareDropped: func() uint64 {
			if p.listener == nil {
				return 0
			}
			return p.listener.ShareDropped()
		},
		Version: p.version,
		Logger:  p.log,
	}
	if p.qlog != nil {
		opts.QueryLogDropped = p.qlog.Dropped
	}
	p.metrics = metrics.New(opts)
	return nil
}
