package proxy

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/filter"
	"github.com/dotproxy/dotproxy/health"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
	"github.com/miekg/dns"
)

// generation is everything one configuration builds behind the listener:
// upstreams, selector, checker, filter, cache and the chain through them.
// A reload builds a new generation, reusing the parts whose configuration
// did not change, and retires the old one once its queries are done.
type generation struct {
	cfg      *config.Config
	ups      []*upstream.Upstream
	selector *upstream.Selector
	fwd      *forwarding       // forward rules and router:, below the cache beside selector
	reverse  resolver.Resolver // the forward rules alone, for the PTR lookups naming clients
	checker  *health.Checker
	filter   *filter.Filter
	cache    *cache.Cache // nil when disabled
	chain    resolver.Resolver

	active  atomic.Int64  // queries being resolved by this generation
	retired atomic.Bool   // no new query may start here
	drained chan struct{} // closed once retired with no query left
	drain   sync.Once     // closes drained
}

// build makes a generation for cfg. Parts of prev (nil at start) whose
// configuration is unchanged are taken over: an upstream keeps its
// connections, RTT and health, the filter its loaded lists, the cache its
// entries. On error, what build made is closed and prev is untouched.
//
// current returns the generation serving now (nil before the first, when
// g stands in): filter list downloads and upstreams' host names are
// resolved through its selector, so that a filter or an upstream kept
// across reloads never uses upstreams since closed.
// clock judges the new upstreams' certificates; names names the filter
// groups' clients.
func build(cfg *config.Config, prev *generation, current func() *generation, clock *upstream.Clock, names filter.Namer, log *slog.Logger) (g *generation, err error) {
	g = &generation{cfg: cfg, drained: make(chan struct{})}
	defer func() {
		if err != nil {
			g.stopUnused(prev)
		}
	}()
	serving := func() *generation {
		if cur := current(); cur != nil {
			return cur
		}
		return g
	}
	var members, fallbacks []upstream.Member
	for i, uc := range cfg.Upstreams {
		u := prev.upstream(uc, cfg)
		if u == nil {
			if u, err = buildUpstream(cfg, i, serving, clock, log); err != nil {
				return g, err
			}
		}
		g.ups = append(g.ups, u)
		if uc.Fallback {
			fallbacks = append(fallbacks, u)
		} else {
			members = append(members, u)
		}
	}
	policy, err := upstream.NewPolicy(cfg.Policy)
	if err != nil {
		return g, err
	}
	g.selector, err = upstream.NewSelector(upstream.SelectorOptions{
		Policy:         policy,
		AttemptTimeout: cfg.Timeout,
		HedgeDelay:     cfg.HedgeDelay,
		Fallbacks:      fallbacks,
		Logger:         log,
	}, members...)
	if err != nil {
		return g, err
	}
	if prev != nil && sameForwarding(prev.cfg, cfg) {
		g.fwd = prev.fwd
	} else if g.fwd, err = newForwarding(cfg, clock, log); err != nil {
		return g, err
	}
	if prev != nil && sameFilter(prev.cfg, cfg) {
		g.filter = prev.filter
	} else if g.filter, err = newFilter(cfg, prev.filterOrNil(), listResolver(serving), names, log); err != nil {
		return g, err
	}
	if prev != nil && reflect.DeepEqual(prev.cfg.Cache, cfg.Cache) {
		g.cache = prev.cache
	} else if cfg.Cache.Enabled {
		g.cache = newCache(cfg.Cache, log)
	}
	mw := []resolver.Middleware{g.filter.Middleware()}
	if g.cache != nil {
		mw = append(mw, g.cache.Middleware())
	}
	g.chain = resolver.Chain(g.counted(g.fwd.router(cfg, g.selector)), mw...)
	g.reverse = g.counted(g.fwd.reverse())

	targets := make([]health.Target, len(g.ups))
	for i, u := range g.ups {
		targets[i] = u
	}
	h := cfg.Health
	g.checker = health.New(health.Options{
		Interval: h.Interval, DownInterval: h.DownInterval, Timeout: h.Timeout,
		Fall: h.Fall, Rise: h.Rise, ProbeName: h.ProbeName, ProbeType: h.ProbeType,
		Logger: log,
	}, targets...)
	return g, nil
}

// buildUpstream builds cfg.Upstreams[i]; a host name is looked up
// through the upstreams of the generation serving returns (see
// hostLookup).
func buildUpstream(cfg *config.Config, i int, serving func() *generation, clock *upstream.Clock, log *slog.Logger) (*upstream.Upstream, error) {
	uc := cfg.Upstreams[i]
	if uc.Host == "" || !config.LookupPath(cfg, i) {
		return newUpstream(uc, cfg, nil, clock, log)
	}
	l := &hostLookup{bootstrap: uc.Bootstrap, gen: serving, log: log}
	u, err := newUpstream(uc, cfg, l.lookup, clock, log)
	l.self = u
	return u, err
}

// listResolver resolves through the selector of the generation serving
// returns.
func listResolver(serving func() *generation) resolver.Resolver {
	return resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		return serving().selector.Resolve(ctx, req)
	})
}

// upstream returns prev's upstream configured exactly as uc under cfg,
// or nil.
func (prev *generation) upstream(uc config.Upstream, cfg *config.Config) *upstream.Upstream {
	if prev == nil || prev.cfg.Connections != cfg.Connections {
		return nil
	}
	for i, old := range prev.cfg.Upstreams {
		if reflect.DeepEqual(old, uc) {
			return prev.ups[i]
		}
	}
	return nil
}

// filterOrNil is prev's filter; prev may be nil.
func (prev *generation) filterOrNil() *filter.Filter {
	if prev == nil {
		return nil
	}
	return prev.filter
}

func sameFilter(a, b *config.Config) bool {
	return reflect.DeepEqual(a.Filter, b.Filter) && reflect.DeepEqual(a.LocalRecords, b.LocalRecords) &&
		sameLocalNames(a, b)
}

// resolve runs req through the generation's chain; ok is false when the
// generation was retired before the query could start here. While a
// required filter list is pending, req is refused with Extended DNS Error
// 14, Not Ready: "no filtering, no DNS".
//
// An Inline request is not counted in active: it never waits on an
// upstream, so retire has nothing to wait for (one that races a retire
// answers from the old cache, as a query started a moment earlier
// would), and two atomic updates of a shared counter per cache hit would
// cost more than the rest of the chain.
func (g *generation) resolve(ctx context.Context, req *resolver.Request) (resp resolver.Response, ok bool, err error) {
	if !req.Inline {
		g.active.Add(1)
		defer g.leave()
	}
	if g.retired.Load() {
		return resolver.Response{}, false, nil
	}
	if err := g.filter.Ready(); err != nil {
		return resolver.Response{}, true, &resolver.Error{Code: dns.ExtendedErrorCodeNotReady, Text: "filter lists not loaded yet", Err: err}
	}
	resp, err = g.chain.Resolve(ctx, req)
	return resp, true, err
}

// counted resolves through r while holding g.active, as a client's query
// does: the cache's own queries (prefetches, a miss's query that goes on
// after its client was served stale) reach the upstreams here, and retire
// must not close the parts they use under them.
func (g *generation) counted(r resolver.Resolver) resolver.Resolver {
	return resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		if req.Inline {
			return r.Resolve(ctx, req) // waits on nothing: the selector says so at once
		}
		g.active.Add(1)
		defer g.leave()
		return r.Resolve(ctx, req)
	})
}

// start begins what runs in the background: probing and, for a filter
// prev did not already run, list refreshes.
func (g *generation) start(prev *generation) {
	g.checker.Start()
	if prev == nil || g.filter != prev.filter {
		g.filter.Start(context.Background())
	}
}

// stopUnused stops the parts of g that keep (nil: none) does not use.
func (g *generation) stopUnused(keep *generation) {
	if g.filter != nil && (keep == nil || keep.filter != g.filter) {
		g.filter.Stop()
	}
	if keep == nil || keep.fwd != g.fwd {
		g.fwd.close()
	}
	if g.cache != nil && (keep == nil || keep.cache != g.cache) {
		g.cache.Close()
	}
	for _, u := range g.ups {
		if keep == nil || !slices.Contains(keep.ups, u) {
			u.Close()
		}
	}
}
