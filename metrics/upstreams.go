package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dotproxy/dotproxy/upstream"
)

// upstreamDesc describes a per-upstream metric: its name after
// dotproxy_upstream_, its help and its labels after "upstream".
func upstreamDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_upstream_"+name, help, append([]string{"upstream"}, labels...), nil)
}

var (
	upQueries = upstreamDesc("queries_total",
		"Queries sent to the upstream (attempts, health probes included).")
	upAnswers = upstreamDesc("answers_total",
		"Valid responses received from the upstream, whatever their response code.")
	upErrors = upstreamDesc("errors_total",
		"Failed queries to the upstream by kind: timeout, connection, tls, bad_answer; "+
			"servfail and refused count answers with that response code.", "kind")
	upAbandoned = upstreamDesc("abandoned_total",
		"Queries to the upstream given up unanswered because another upstream answered first or the client went away.")
	upFailovers = upstreamDesc("failovers_total",
		"Queries moved on from the upstream to another, after a failure or as a hedge while it was slow.")
	upRTT = upstreamDesc("rtt_seconds",
		"Round-trip time of the upstream's answers.")
	upSRTT = upstreamDesc("srtt_seconds",
		"Smoothed round-trip time of the upstream's answers; 0 before the first.")
	upUp = upstreamDesc("up",
		"The health checker's verdict on the upstream: 1 up, 0 down.")
	upConns = upstreamDesc("open_connections",
		"TLS connections open to the upstream.")
	upInfo = upstreamDesc("info",
		"Always 1; the labels give the upstream's address, certificate name and transport (tls, https, h3, quic).",
		"address", "tls_name", "transport")
)

// upstreamCollector exports the upstreams the provider returns at each
// scrape, so that it follows reloads by itself.
type upstreamCollector struct {
	stats func() []upstream.UpstreamStats
}

var _ prometheus.Collector = (*upstreamCollector)(nil)

// Describe implements prometheus.Collector.
func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upQueries, upAnswers, upErrors, upAbandoned, upFailovers, upRTT, upSRTT, upUp, upConns, upInfo} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		name := s.Name
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
		}
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{name}, labels...)...)
		}
		counter(upQueries, s.Queries)
		counter(upAnswers, s.Answers)
		for kind, n := range s.Errors {
			counter(upErrors, n, upstream.ErrorKind(kind).String())
		}
		counter(upAbandoned, s.Abandoned)
		counter(upFailovers, s.Failovers)
		count, sum, buckets := histogram(s.RTT)
		ch <- prometheus.MustNewConstHistogram(upRTT, count, sum, buckets, name)
		gauge(upSRTT, s.SRTT.Seconds())
		gauge(upUp, boolValue(s.Healthy))
		gauge(upConns, float64(s.OpenConns))
		gauge(upInfo, 1, s.Address, s.TLSName, s.Transport)
	}
}

// histogram turns h into what a Prometheus histogram is made of: the
// count, the sum in seconds and the cumulative count at each upper bound.
func histogram(h upstream.RTTHistogram) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(h.Bounds))
	if len(h.Counts) != len(h.Bounds)+1 {
		return 0, 0, buckets // none measured (a zero RTTHistogram)
	}
	for i, b := range h.Bounds {
		count += h.Counts[i]
		buckets[b.Seconds()] = count
	}
	// The samples above every bound count only in the total (+Inf).
	count += h.Counts[len(h.Bounds)]
	return count, h.Sum.Seconds(), buckets
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
