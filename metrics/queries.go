package metrics

import (
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dotproxy/dotproxy/resolver"
)

// latencyBuckets are the client latency histogram's upper bounds, in
// seconds: from a cache hit (a tenth of a millisecond) to past the query
// timeout's neighbourhood (a stub resolver waits 5 s).
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5,
}

// transports are the transport label's values, indexed as observe
// counts them: resolver.UDP first, then resolver.TCP.
var transports = [...]string{resolver.UDP.String(), resolver.TCP.String()}

// qtypes are the qtype label's values: the query types a home network
// asks, by name; every other one counts as "other", so that a client
// asking odd types cannot grow the label set.
var qtypes = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeCNAME, dns.TypePTR,
	dns.TypeTXT, dns.TypeMX, dns.TypeSRV, dns.TypeNS, dns.TypeSOA, dns.TypeNAPTR,
	dns.TypeCAA, dns.TypeDS, dns.TypeDNSKEY, dns.TypeANY,
}

// rcodes are the rcode label's values, likewise bounded.
var rcodes = [...]int{
	dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
	dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeBadVers,
}

// rcodeNames name rcodes. Not dns.RcodeToString, which calls 16 BADSIG:
// a TSIG code, while to a client of ours, who signs nothing, it is
// BADVERS.
var rcodeNames = [len(rcodes)]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS"}

const (
	numQtypes = len(qtypes) + 1 // + "other"
	numRcodes = len(rcodes) + 1
)

// qtypeIndex is t's place in qtypes, or len(qtypes) for "other".
func qtypeIndex(t uint16) int {
	for i, q := range qtypes {
		if q == t {
			return i
		}
	}
	return len(qtypes)
}

func qtypeLabel(i int) string {
	if i < len(qtypes) {
		return dns.TypeToString[qtypes[i]]
	}
	return "other"
}

func rcodeIndex(rc int) int {
	for i, r := range rcodes {
		if r == rc {
			return i
		}
	}
	return len(rcodes)
}

func rcodeLabel(i int) string {
	if i < len(rcodes) {
		return rcodeNames[i]
	}
	return "other"
}

// sources are the latency histogram's source label: what answered.
const (
	sourceUpstream = iota // an upstream's answer (not from the cache)
	sourceCache           // the cache: fresh, stale or a remembered failure
	sourceFilter          // blocked, or answered locally
	sourceNone            // nothing did: refused, malformed, or every upstream failed
	numSources
)

var sourceLabels = [numSources]string{"upstream", "cache", "filter", "none"}

// queries counts the client queries the listener reports. The counts
// live in a fixed table of atomics, read at scrape time, rather than in
// a CounterVec: counting is then one atomic addition with no label
// lookup on the query path.
type queries struct {
	total   atomic.Uint64
	counts  [len(transports)][numQtypes][numRcodes]atomic.Uint64
	latency [numSources]prometheus.Observer
	hist    *prometheus.HistogramVec
	desc    *prometheus.Desc
	// rebind counts answers refused by rebinding protection; a refusal
	// answered again from the cache counts as cached, not here.
	rebind     atomic.Uint64
	rebindDesc *prometheus.Desc
}

var _ prometheus.Collector = (*queries)(nil)

func newQueries() *queries {
	q := &queries{
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "query_duration_seconds",
			Help: "Time from receiving a client query to its answer being ready, by what answered it " +
				"(upstream, cache, filter, or none: refused, malformed or failed).",
			Buckets: latencyBuckets,
		}, []string{"source"}),
		desc: prometheus.NewDesc(namespace+"_queries_total",
			"Client queries answered, by transport, query type (other: any not listed) and response code.",
			[]string{"transport", "qtype", "rcode"}, nil),
		rebindDesc: prometheus.NewDesc(namespace+"_rebind_refused_total",
			"Public upstream answers refused by DNS rebinding protection: they pointed into the private network.", nil, nil),
	}
	for i, s := range sourceLabels {
		q.latency[i] = q.hist.WithLabelValues(s)
	}
	return q
}

func (q *queries) observe(ev *resolver.QueryEvent) {
	q.total.Add(1)
	tr := 0
	if ev.Transport == resolver.TCP {
		tr = 1
	}
	q.counts[tr][qtypeIndex(ev.Qtype)][rcodeIndex(ev.Rcode)].Add(1)
	q.latency[source(ev)].Observe(ev.Duration.Seconds())
	if ev.Info.Rebind {
		q.rebind.Add(1)
	}
}

func source(ev *resolver.QueryEvent) int {
	switch in := &ev.Info; {
	case in.Blocked != "" || in.Local || in.Rebind:
		return sourceFilter
	case in.Cached:
		return sourceCache
	case in.Upstream != "":
		return sourceUpstream
	}
	return sourceNone
}

// Describe implements prometheus.Collector.
func (q *queries) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.desc
	ch <- q.rebindDesc
	q.hist.Describe(ch)
}

// Collect implements prometheus.Collector. Only the combinations seen so
// far are exported.
func (q *queries) Collect(ch chan<- prometheus.Metric) {
	for tr := range q.counts {
		for qt := range q.counts[tr] {
			for rc := range q.counts[tr][qt] {
				if n := q.counts[tr][qt][rc].Load(); n > 0 {
					ch <- prometheus.MustNewConstMetric(q.desc, prometheus.CounterValue, float64(n),
						transports[tr], qtypeLabel(qt), rcodeLabel(rc))
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(q.rebindDesc, prometheus.CounterValue, float64(q.rebind.Load()))
	q.hist.Collect(ch)
}
