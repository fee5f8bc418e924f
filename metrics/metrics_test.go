package metrics

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/filter"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// TestQueries: each observed query is counted under its transport,
// bounded qtype and rcode labels, and timed under what answered it.
func TestQueries(t *testing.T) {
	m := New(Options{})
	for _, ev := range []resolver.QueryEvent{
		{Transport: resolver.UDP, Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Duration: 30 * time.Millisecond, Info: resolver.Info{Upstream: "quad9"}},
		{Transport: resolver.UDP, Qtype: dns.TypeA, Rcode: dns.RcodeSuccess, Duration: 50 * time.Microsecond, Info: resolver.Info{Cached: true}},
		{Transport: resolver.TCP, Qtype: dns.TypeHTTPS, Rcode: dns.RcodeNameError, Duration: time.Millisecond, Info: resolver.Info{Blocked: "ads"}},
		{Transport: resolver.TCP, Qtype: dns.TypeNULL, Rcode: dns.RcodeNotAuth, Duration: time.Minute},
		{Transport: resolver.UDP, Qtype: 65280, Rcode: dns.RcodeRefused},
		{Transport: resolver.UDP, Qtype: dns.TypeAAAA, Rcode: dns.RcodeBadVers, Info: resolver.Info{Local: true}},
		{Transport: resolver.UDP, Qtype: dns.TypeA, Rcode: dns.RcodeRefused, Info: resolver.Info{Upstream: "quad9", Rebind: true}},
	} {
		m.ObserveQuery(ev)
	}
	s := scrapeHandler(t, m.Handler())
	want := map[string]float64{
		key("dotproxy_queries_total", "transport", "udp", "qtype", "A", "rcode", "NOERROR"):      2,
		key("dotproxy_queries_total", "transport", "udp", "qtype", "A", "rcode", "REFUSED"):      1,
		key("dotproxy_rebind_refused_total"):                                                     1,
		key("dotproxy_queries_total", "transport", "tcp", "qtype", "HTTPS", "rcode", "NXDOMAIN"): 1,
		key("dotproxy_queries_total", "transport", "tcp", "qtype", "other", "rcode", "other"):    1,
		key("dotproxy_queries_total", "transport", "udp", "qtype", "other", "rcode", "REFUSED"):  1,
		key("dotproxy_queries_total", "transport", "udp", "qtype", "AAAA", "rcode", "BADVERS"):   1,
		key("dotproxy_query_duration_seconds_count", "source", "upstream"):                       1,
		key("dotproxy_query_duration_seconds_count", "source", "cache"):                          1,
		key("dotproxy_query_duration_seconds_count", "source", "filter"):                         3,
		key("dotproxy_query_duration_seconds_count", "source", "none"):                           2,
		key("dotproxy_query_duration_seconds_bucket", "source", "cache", "le", "0.0001"):         1,
		key("dotproxy_query_duration_seconds_bucket", "source", "upstream", "le", "0.025"):       0,
		key("dotproxy_query_duration_seconds_bucket", "source", "upstream", "le", "0.05"):        1,
		key("dotproxy_query_duration_seconds_bucket", "source", "none", "le", "5"):               1,
	}
	for k, v := range want {
		if got, ok := s.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if n := len(s.families["dotproxy_queries_total"].GetMetric()); n != 6 {
		t.Errorf("%d query series, want only the 6 seen", n)
	}
	if m.Queries() != 7 {
		t.Errorf("Queries() = %d, want 7", m.Queries())
	}
}

// TestUpstreamsFollowProvider: the upstream series are whatever the
// provider returns at the scrape, so that a reload needs no call here
// and a removed upstream's series vanish.
func TestUpstreamsFollowProvider(t *testing.T) {
	var errs upstream.ErrorCounts
	errs[upstream.ErrorTimeout], errs[upstream.ErrorTLS], errs[upstream.ErrorServFail] = 3, 1, 2
	quad9 := upstream.UpstreamStats{
		Name: "quad9", Address: "9.9.9.9:853", TLSName: "dns.quad9.net", Transport: "tls", Healthy: true,
		SRTT: 20 * time.Millisecond, OpenConns: 2, Queries: 10, Answers: 6, Errors: errs, Abandoned: 1, Failovers: 4,
		RTT: upstream.RTTHistogram{
			Bounds: []time.Duration{10 * time.Millisecond, 100 * time.Millisecond},
			Counts: []uint64{1, 4, 1},
			Sum:    time.Second,
		},
	}
	google := upstream.UpstreamStats{Name: "google", Address: "8.8.8.8:443", TLSName: "dns.google", Transport: "https"}
	var mu sync.Mutex
	current := []upstream.UpstreamStats{quad9, google}
	m := New(Options{Upstreams: func() []upstream.UpstreamStats {
		mu.Lock()
		defer mu.Unlock()
		return current
	}})

	s := scrapeHandler(t, m.Handler())
	want := map[string]float64{
		key("dotproxy_upstream_queries_total", "upstream", "quad9"):                                                                   10,
		key("dotproxy_upstream_answers_total", "upstream", "quad9"):                                                                   6,
		key("dotproxy_upstream_errors_total", "upstream", "quad9", "kind", "timeout"):                                                 3,
		key("dotproxy_upstream_errors_total", "upstream", "quad9", "kind", "tls"):                                                     1,
		key("dotproxy_upstream_errors_total", "upstream", "quad9", "kind", "servfail"):                                                2,
		key("dotproxy_upstream_errors_total", "upstream", "quad9", "kind", "connection"):                                              0,
		key("dotproxy_upstream_errors_total", "upstream", "quad9", "kind", "bad_answer"):                                              0,
		key("dotproxy_upstream_errors_total", "upstream", "quad9", "kind", "refused"):                                                 0,
		key("dotproxy_upstream_abandoned_total", "upstream", "quad9"):                                                                 1,
		key("dotproxy_upstream_failovers_total", "upstream", "quad9"):                                                                 4,
		key("dotproxy_upstream_srtt_seconds", "upstream", "quad9"):                                                                    0.02,
		key("dotproxy_upstream_up", "upstream", "quad9"):                                                                              1,
		key("dotproxy_upstream_up", "upstream", "google"):                                                                             0,
		key("dotproxy_upstream_open_connections", "upstream", "quad9"):                                                                2,
		key("dotproxy_upstream_rtt_seconds_bucket", "upstream", "quad9", "le", "0.01"):                                                1,
		key("dotproxy_upstream_rtt_seconds_bucket", "upstream", "quad9", "le", "0.1"):                                                 5,
		key("dotproxy_upstream_rtt_seconds_count", "upstream", "quad9"):                                                               6,
		key("dotproxy_upstream_rtt_seconds_sum", "upstream", "quad9"):                                                                 1,
		key("dotproxy_upstream_rtt_seconds_count", "upstream", "google"):                                                              0,
		key("dotproxy_upstream_info", "upstream", "quad9", "address", "9.9.9.9:853", "tls_name", "dns.quad9.net", "transport", "tls"): 1,
		key("dotproxy_upstream_info", "upstream", "google", "address", "8.8.8.8:443", "tls_name", "dns.google", "transport", "https"): 1,
	}
	for k, v := range want {
		if got, ok := s.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}

	mu.Lock()
	current = []upstream.UpstreamStats{quad9}
	mu.Unlock()
	s = scrapeHandler(t, m.Handler())
	for k := range s.samples {
		if strings.Contains(k, `upstream="google"`) {
			t.Errorf("removed upstream still exported: %s", k)
		}
	}
	if !s.with(key("dotproxy_upstream_queries_total", "upstream", "quad9")) {
		t.Error("the remaining upstream is gone too")
	}
}

// TestCacheAndFilter: the cache's and the filter's figures appear when
// they are on, and a list is labelled without its URL's secrets.
func TestCacheAndFilter(t *testing.T) {
	cacheOn, filterOn := false, false
	m := New(Options{
		Cache: func() (cache.Stats, bool) {
			return cache.Stats{Hits: 7, Misses: 3, Stale: 1, Prefetches: 2, Evictions: 5, Entries: 40, Bytes: 4096}, cacheOn
		},
		Filter: func() (filter.Stats, bool) {
			return filter.Stats{Blocked: 6, Cloaked: 1, Local: 2, Lists: []filter.ListStats{
				{Source: "https://user:pw@lists.example/ads.txt?token=s3cret", Blocked: 4, Rules: 100},
				{Source: "https://lists.example/ads.txt?token=other", Blocked: 1, Rules: 50},
				{Source: "/etc/dotproxy/block.txt", Blocked: 1, Rules: 10},
				{Source: "/etc/dotproxy/allow.txt", Allow: true, Rules: 3},
				{Source: "https://lists.example/new.txt", Pending: true},
			}}, filterOn
		},
	})
	s := scrapeHandler(t, m.Handler())
	if s.with("dotproxy_cache_") || s.with("dotproxy_filter_") {
		t.Fatal("cache or filter metrics exported while off")
	}

	cacheOn, filterOn = true, true
	s = scrapeHandler(t, m.Handler())
	want := map[string]float64{
		"dotproxy_cache_hits_total":           7,
		"dotproxy_cache_misses_total":         3,
		"dotproxy_cache_stale_answers_total":  1,
		"dotproxy_cache_prefetches_total":     2,
		"dotproxy_cache_evictions_total":      5,
		"dotproxy_cache_entries":              40,
		"dotproxy_cache_size_bytes":           4096,
		"dotproxy_filter_cloaked_total":       1,
		"dotproxy_filter_local_answers_total": 2,
		key("dotproxy_filter_blocked_total", "list", "https://lists.example/ads.txt"):                 5,
		key("dotproxy_filter_blocked_total", "list", "/etc/dotproxy/block.txt"):                       1,
		key("dotproxy_filter_list_rules", "list", "https://lists.example/ads.txt", "kind", "block"):   150,
		key("dotproxy_filter_list_rules", "list", "/etc/dotproxy/allow.txt", "kind", "allow"):         3,
		key("dotproxy_filter_list_pending", "list", "https://lists.example/new.txt", "kind", "block"): 1,
		key("dotproxy_filter_list_pending", "list", "https://lists.example/ads.txt", "kind", "block"): 0,
	}
	for k, v := range want {
		if got, ok := s.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for k := range s.samples {
		if strings.Contains(k, "s3cret") || strings.Contains(k, "pw@") {
			t.Errorf("a list's secret in a label: %s", k)
		}
	}
	if s.with(key("dotproxy_filter_blocked_total", "list", "/etc/dotproxy/allow.txt")) {
		t.Error("an allowlist counted as blocking")
	}
}

// TestExposition: every metric of ours has help text, passes the
// Prometheus linter (names, units, suffixes), and the process and Go
// metrics are there, from this registry alone.
func TestExposition(t *testing.T) {
	m := New(Options{
		Upstreams:       func() []upstream.UpstreamStats { return []upstream.UpstreamStats{{Name: "u"}} },
		Cache:           func() (cache.Stats, bool) { return cache.Stats{}, true },
		Filter:          func() (filter.Stats, bool) { return filter.Stats{Lists: []filter.ListStats{{Source: "l"}}}, true },
		QueryLogDropped: func() uint64 { return 9 },
		ClockGrace:      func() uint64 { return 4 },
		RateLimited:     func() (uint64, uint64) { return 4, 3 },
		ShareDropped:    func() uint64 { return 5 },
		Version:         "1.2.3",
	})
	m.ObserveQuery(resolver.QueryEvent{Transport: resolver.UDP})
	s := scrapeHandler(t, m.Handler())
	for name, f := range s.families {
		if strings.HasPrefix(name, "dotproxy_") && f.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines"} {
		if s.families[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	if s.samples["dotproxy_querylog_dropped_total"] != 9 {
		t.Errorf("querylog dropped: %v", s.samples["dotproxy_querylog_dropped_total"])
	}
	if s.samples["dotproxy_tls_clock_grace_total"] != 4 {
		t.Errorf("clock grace: %v", s.samples["dotproxy_tls_clock_grace_total"])
	}
	if d, sl := s.samples[`dotproxy_rate_limited_total{action="drop"}`], s.samples[`dotproxy_rate_limited_total{action="slip"}`]; d != 4 || sl != 3 {
		t.Errorf("rate limited: drop %v, slip %v; want 4, 3", d, sl)
	}
	if s.samples["dotproxy_inflight_share_dropped_total"] != 5 {
		t.Errorf("share dropped: %v", s.samples["dotproxy_inflight_share_dropped_total"])
	}
	if !s.with(`dotproxy_build_info{goversion="go`) || !s.with(`dotproxy_build_info{goversion=`) {
		t.Error("no build info")
	}
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "dotproxy_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// BenchmarkObserveQuery is the metrics' cost on each query's path.
func BenchmarkObserveQuery(b *testing.B) {
	m := New(Options{})
	ev := resolver.QueryEvent{Transport: resolver.UDP, Qtype: dns.TypeAAAA, Rcode: dns.RcodeSuccess,
		Duration: 20 * time.Millisecond, Info: resolver.Info{Upstream: "quad9"}}
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveQuery(ev)
	}
}
