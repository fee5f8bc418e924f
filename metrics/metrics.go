// Package metrics exports dotproxy's figures in the Prometheus text
// format.
//
// It owns a Prometheus registry of its own (never the global default)
// and what goes in it: the client queries, counted as the listener
// reports them (each resolver.QueryEvent, to ObserveQuery); the
// upstreams', the cache's and the filter's counters, read at scrape time through the
// provider funcs in Options, so that a reload that swaps those parts is
// followed without telling this package, and a removed upstream's series
// vanish with it; and the process and Go runtime metrics. It does not
// count anything the other packages count themselves, serve HTTP (its
// Handler goes on the admin listener) or read the configuration.
//
// Metric names start with dotproxy_ (the process_ and go_ metrics keep
// their standard names) and carry their unit: _seconds, _bytes, _total.
// Label values are bounded: transports, a fixed set of query types and
// response codes, error kinds, upstream names from the configuration, and
// list names with any URL's query, fragment and user information (where
// tokens go) removed.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/filter"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// namespace prefixes every metric of dotproxy's own.
const namespace = "dotproxy"

// Options configures Metrics. Every field is optional: a nil provider
// leaves its metrics out.
type Options struct {
	// Upstreams returns a snapshot of every upstream in service now,
	// called once per scrape. Upstreams missing from it (removed by a
	// reload) have no series.
	Upstreams func() []upstream.UpstreamStats
	// Cache returns the cache's counters, or ok false when the cache is
	// off; called once per scrape.
	Cache func() (st cache.Stats, ok bool)
	// Filter returns the filter's counters, or ok false when there is no
	// filter; called once per scrape.
	Filter func() (st filter.Stats, ok bool)
	// QueryLogDropped returns how many query log lines were dropped
	// because the writer fell behind (querylog.Logger.Dropped).
	QueryLogDropped func() uint64
	// ClockGrace returns how many upstream certificate checks were
	// judged at the build time because the system clock was unset
	// (upstream.Clock.Graced).
	ClockGrace func() uint64
	// RateLimited returns how many UDP answers response rate limiting
	// dropped and how many it sent truncated instead
	// (listener.Server.RateLimited).
	RateLimited func() (dropped, slipped uint64)
	// ShareDropped returns how many UDP queries were dropped because
	// their client held its whole share of the queries in flight
	// (listener.Server.ShareDropped).
	ShareDropped func() uint64
	// Version is the program's version, exported as
	// dotproxy_build_info{version}; empty leaves it out.
	Version string
	// Logger receives the errors of a scrape; nil discards them.
	Logger *slog.Logger
}

// Metrics holds dotproxy's Prometheus registry. Create it with New, give
// it to the listener as its Observer, and serve Handler.
type Metrics struct {
	reg     *prometheus.Registry
	queries *queries
	handler http.Handler
}

// New builds the registry. It panics only on a programming error (two
// metrics of one name), which every test run would show.
func New(opts Options) *Metrics {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), queries: newQueries()}
	m.reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		m.queries,
	)
	if opts.Upstreams != nil {
		m.reg.MustRegister(&upstreamCollector{stats: opts.Upstreams})
	}
	if opts.Cache != nil {
		m.reg.MustRegister(&cacheCollector{stats: opts.Cache})
	}
	if opts.Filter != nil {
		m.reg.MustRegister(&filterCollector{stats: opts.Filter})
	}
	if opts.QueryLogDropped != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "querylog_dropped_total",
			Help: "Query log lines dropped because the log writer fell behind.",
		}, func() float64 { return float64(opts.QueryLogDropped()) }))
	}
	if opts.ClockGrace != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "tls_clock_grace_total",
			Help: "Upstream certificate checks that judged validity at the build time, the system clock being earlier (unset).",
		}, func() float64 { return float64(opts.ClockGrace()) }))
	}
	if opts.ShareDropped != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "inflight_share_dropped_total",
			Help: "UDP queries dropped because their client held its whole share of the queries in flight (max_inflight_per_client).",
		}, func() float64 { return float64(opts.ShareDropped()) }))
	}
	if opts.RateLimited != nil {
		for _, action := range []string{"drop", "slip"} {
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: namespace, Name: "rate_limited_total",
				Help:        "UDP answers held back by response rate limiting: dropped, or sent truncated (slip).",
				ConstLabels: prometheus.Labels{"action": action},
			}, func() float64 {
				dropped, slipped := opts.RateLimited()
				if action == "drop" {
					return float64(dropped)
				}
				return float64(slipped)
			}))
		}
	}
	if opts.Version != "" {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help:        "Always 1; the labels say which build is running.",
			ConstLabels: prometheus.Labels{"version": opts.Version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }))
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slogPrinter{opts.Logger},
		// A collector that fails leaves its metrics out; the rest are
		// still served.
		ErrorHandling: promhttp.ContinueOnError,
	})
	return m
}

// Handler serves the metrics in the Prometheus exposition formats, for
// GET /metrics.
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveQuery implements the listener's Observer: it counts one answered
// client query. It takes a few atomic additions and allocates nothing.
func (m *Metrics) ObserveQuery(ev resolver.QueryEvent) { m.queries.observe(&ev) }

// Queries returns the number of client queries answered so far, over
// every transport, for the status page.
func (m *Metrics) Queries() uint64 { return m.queries.total.Load() }

// slogPrinter adapts a slog.Logger to promhttp.Logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("serving metrics", "err", fmt.Sprint(v...))
}
