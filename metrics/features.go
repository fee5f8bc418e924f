package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/filter"
)

var (
	cacheHits = prometheus.NewDesc(namespace+"_cache_hits_total",
		"Queries answered from a fresh cache entry or a remembered failure.", nil, nil)
	cacheMisses = prometheus.NewDesc(namespace+"_cache_misses_total",
		"Queries the cache could not answer fresh: asked upstream, or joined a query in flight.", nil, nil)
	cacheStale = prometheus.NewDesc(namespace+"_cache_stale_answers_total",
		"Queries answered with an expired entry (serve-stale, RFC 8767).", nil, nil)
	cachePrefetches = prometheus.NewDesc(namespace+"_cache_prefetches_total",
		"Background refreshes of popular entries before they expired.", nil, nil)
	cacheEvictions = prometheus.NewDesc(namespace+"_cache_evictions_total",
		"Entries pushed out by the cache's size or memory bound.", nil, nil)
	cacheEntries = prometheus.NewDesc(namespace+"_cache_entries",
		"Entries in the cache, expired ones kept for serve-stale included.", nil, nil)
	cacheBytes = prometheus.NewDesc(namespace+"_cache_size_bytes",
		"Approximate memory the cache entries take.", nil, nil)
)

// cacheCollector exports the cache's counters, read at each scrape; none
// while the cache is off. A cache rebuilt by a reload starts from zero,
// which Prometheus takes as a counter reset.
type cacheCollector struct {
	stats func() (cache.Stats, bool)
}

var _ prometheus.Collector = (*cacheCollector)(nil)

// Describe implements prometheus.Collector.
func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHits, cacheMisses, cacheStale, cachePrefetches, cacheEvictions, cacheEntries, cacheBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.stats()
	if !ok {
		return
	}
	for d, v := range map[*prometheus.Desc]uint64{cacheHits: s.Hits, cacheMisses: s.Misses, cacheStale: s.Stale,
		cachePrefetches: s.Prefetches, cacheEvictions: s.Evictions} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(cacheEntries, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(cacheBytes, prometheus.GaugeValue, float64(s.Bytes))
}

var (
	filterBlocked = prometheus.NewDesc(namespace+"_filter_blocked_total",
		"Queries blocked, by the list whose rule blocked them (CNAME cloaking included).", []string{"list"}, nil)
	filterCloaked = prometheus.NewDesc(namespace+"_filter_cloaked_total",
		"Queries blocked because a name in the upstream answer's CNAME chain is blocked.", nil, nil)
	filterLocal = prometheus.NewDesc(namespace+"_filter_local_answers_total",
		"Queries answered from local records or a locally served zone.", nil, nil)
	filterRules = prometheus.NewDesc(namespace+"_filter_list_rules",
		"Distinct names in the version of the list in use.", []string{"list", "kind"}, nil)
	filterPending = prometheus.NewDesc(namespace+"_filter_list_pending",
		"1 while the list has never loaded (the filter answers without it), else 0.", []string{"list", "kind"}, nil)
)

// filterCollector exports the filter's counters, read at each scrape.
type filterCollector struct {
	stats func() (filter.Stats, bool)
}

var _ prometheus.Collector = (*filterCollector)(nil)

// Describe implements prometheus.Collector.
func (c *filterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{filterBlocked, filterCloaked, filterLocal, filterRules, filterPending} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Lists are labelled by their
// shown name (filter.ListName), never by a URL with its token; two lists
// that differ only in what that hides are added together.
func (c *filterCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.stats()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(filterCloaked, prometheus.CounterValue, float64(s.Cloaked))
	ch <- prometheus.MustNewConstMetric(filterLocal, prometheus.CounterValue, float64(s.Local))
	type ruleKey struct{ list, kind string }
	blocked := make(map[string]uint64)
	rules := make(map[ruleKey]int)
	pending := make(map[ruleKey]bool)
	for _, l := range s.Lists {
		name := filter.ListName(l.Source) // not l.Name: the provider may leave it empty
		kind := "block"
		if l.Allow {
			kind = "allow"
		} else {
			blocked[name] += l.Blocked
		}
		rules[ruleKey{name, kind}] += l.Rules
		pending[ruleKey{name, kind}] = pending[ruleKey{name, kind}] || l.Pending
	}
	for name, n := range blocked {
		ch <- prometheus.MustNewConstMetric(filterBlocked, prometheus.CounterValue, float64(n), name)
	}
	for k, n := range rules {
		ch <- prometheus.MustNewConstMetric(filterRules, prometheus.GaugeValue, float64(n), k.list, k.kind)
		v := 0.0
		if pending[k] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(filterPending, prometheus.GaugeValue, v, k.list, k.kind)
	}
}
