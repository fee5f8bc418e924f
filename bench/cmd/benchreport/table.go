package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

var (
	transports = []string{"udp", "tcp"}
	peers      = []string{"ceiling", "dotproxy", "dotproxy-nocache", "unbound", "dnsdist", dotproxyDoH, dotproxyH3, dotproxyDoQ, dnsdistDoH, dotproxyDoTd, dotproxyDoHd}
	rivals     = []string{"unbound", "dnsdist"}
	titles     = map[string]string{
		"miss": "cache miss, saturation (distinct names; dotproxy-nocache is dotproxy with its cache off, for\n" +
			"information: the headline rows are every target on its default configuration; dotproxy-doh,\n" +
			"dotproxy-h3 and dotproxy-doq are dotproxy with DoH, DoH over HTTP/3 and DoQ upstreams,\n" +
			"dnsdist-doh dnsdist with DoH backends; dotproxy-dot-dnsdist and dotproxy-doh-dnsdist are dotproxy\n" +
			"over DoT and DoH to a second responder, dnsdist answering every name on its own frontends)",
		"hit": "cache hit, saturation (a small name set, warmed; the ceiling row is the miss run's)",
		"hitrate": "cache hit at a fixed rate (same -Q for every target): CPU µs/q is the target's own cost per hit,\n" +
			"free of dnsperf's share of the CPU",
	}
)

type key struct{ scenario, transport, peer string }

// results groups the runs by scenario, transport and peer.
type results map[key][]*run

func newResults(runs []*run) results {
	res := results{}
	for _, r := range runs {
		k := key{r.scenario, r.transport, r.peer}
		res[k] = append(res[k], r)
	}
	return res
}

// median of f over the runs of k.
func (res results) median(k key, f func(*run) float64) float64 {
	var v []float64
	for _, r := range res[k] {
		if x := f(r); !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	return median(v)
}

// ratio is the median over the repeats of f(dotproxy)/f(peer), each
// ratio taken within one repeat.
func (res results) ratio(scenario, transport, peer string, f func(*run) float64) float64 {
	return res.ratioOf(scenario, transport, "dotproxy", peer, f)
}

// ratioOf is the median over the repeats of f(a)/f(b), each ratio taken
// within one repeat.
func (res results) ratioOf(scenario, transport, a, b string, f func(*run) float64) float64 {
	return res.paired(scenario, transport, a, b, func(x, y *run) float64 {
		if f(y) == 0 {
			return nan
		}
		return f(x) / f(y)
	})
}

// added is the median over the repeats of f(peer) minus f(ceiling) in
// the same repeat: the latency a target adds over the no-proxy ceiling.
func (res results) added(scenario, transport, peer string, f func(*run) float64) float64 {
	return res.paired(scenario, transport, peer, "ceiling", func(x, y *run) float64 { return f(x) - f(y) })
}

// paired is the median over the repeats of g(a's run, b's run), the two
// runs of one repeat.
func (res results) paired(scenario, transport, a, b string, g func(x, y *run) float64) float64 {
	var v []float64
	for _, x := range res[key{scenario, transport, a}] {
		for _, y := range res[key{scenario, transport, b}] {
			if x.repeat == y.repeat {
				if r := g(x, y); !math.IsNaN(r) {
					v = append(v, r)
				}
			}
		}
	}
	return median(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return nan
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}

func qps(r *run) float64    { return r.qps }
func cpuq(r *run) float64   { return r.cpuPerQueryUS() }
func p50(r *run) float64    { return r.p50MS }
func p99(r *run) float64    { return r.p99MS }
func avg(r *run) float64    { return r.avgMS }
func lost(r *run) float64   { return r.lost }
func mb(kb float64) float64 { return kb / 1024 }

func metric(name string) func(*run) float64 {
	return func(r *run) float64 { return r.metric(name) }
}

// serverCPU is the server process's CPU use during the run, in percent
// of one core (the machine has two).
func serverCPU(r *run) float64 {
	if real := r.metric("dnsperf_real_s"); real > 0 {
		return r.metric("cpu_ticks") / r.metric("clk_tck") / real * 100
	}
	return nan
}

// dnsperfCPU is dnsperf's own CPU use in percent of one core, to show it
// was not the bottleneck.
func dnsperfCPU(r *run) float64 {
	if real := r.metric("dnsperf_real_s"); real > 0 {
		return r.metric("dnsperf_cpu_s") / real * 100
	}
	return nan
}

// report prints the tables, then the targets.
func report(w io.Writer, res results, info map[string]float64, header []string) {
	n := 0
	for _, rs := range res {
		n = max(n, len(rs))
	}
	fmt.Fprintf(w, "dotproxy benchmark: medians of %d repeat(s); load average at start %.2f, at end %.2f\n",
		n, info["load_start"], info["load_end"])
	for _, line := range header {
		fmt.Fprintf(w, "  %s\n", line)
	}
	changed := changedMachine(info)
	if changed != "" {
		fmt.Fprintf(w, "  %s\n", changed)
	}
	res.table(w, "miss")
	res.rateTables(w)
	res.table(w, "hit")
	res.table(w, "hitrate")
	res.exploreTable(w)
	if info["cache_entries"] > 0 {
		fmt.Fprintf(w, "\ndotproxy memory per cached entry (%.0f distinct names cached): %.0f bytes of live heap after GC, %.0f bytes of RSS\n",
			info["cache_entries"], info["entry_heap_bytes"], info["entry_rss_bytes"])
	}
	if changed != "" {
		fmt.Fprintf(w, "\n(%s)\n", changed)
	}
	targets(w, res)
}

// changedMachine says, for a run that changed the machine for its
// length (bench/run -H records halt_poll_set_ns in info.env), that it is
// not the run of record; "" for a run of the machine as it is.
func changedMachine(info map[string]float64) string {
	ns, ok := info["halt_poll_set_ns"]
	if !ok {
		return ""
	}
	return fmt.Sprintf("NOT the run of record: the guest's halt polling was set to %.0f ns for this run (bench/run -H); extra information", ns)
}

// table prints one scenario's full table and the ratios dotproxy/peer.
func (res results) table(w io.Writer, sc string) {
	if !res.has(sc) {
		return
	}
	fmt.Fprintf(w, "\n%s\n", titles[sc])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transport\tpeer\tQPS\t-Q\tavg ms\tp50 ms\tp99 ms\tlost\tCPU µs/q\tCPU%\tconns/upstream\tconns opened\tRSS idle MB\tRSS end MB\tdnsperf CPU%\t")
	for _, tr := range transports {
		for _, p := range peers {
			k := key{sc, tr, p}
			if sc == "hit" && p == "ceiling" {
				k.scenario = "miss"
			}
			if len(res[k]) == 0 || (sc == "hit" && p == "dotproxy-nocache") {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", tr, p,
				f0(res.median(k, qps)), f0(res.median(k, metric("qps_limit"))),
				f2(res.median(k, avg)), f3(res.median(k, p50)), f2(res.median(k, p99)),
				f0(res.median(k, lost)), f1(res.median(k, cpuq)), f0(res.median(k, serverCPU)),
				f0(res.median(k, metric("conns_max"))), f0(res.median(k, metric("conns_opened"))),
				f1(mb(res.median(k, metric("rss_idle_kb")))), f1(mb(res.median(k, metric("rss_end_kb")))),
				f0(res.median(k, dnsperfCPU)))
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "ratios dotproxy/peer (median of per-repeat ratios; QPS >1 and the rest <1 favour dotproxy):")
	for _, tr := range transports {
		for _, p := range rivals {
			fmt.Fprintf(w, "  %s vs %-8s QPS %s  CPU/q %s  avg %s  p50 %s  p99 %s\n", tr, p,
				f2(res.ratio(sc, tr, p, qps)), f2(res.ratio(sc, tr, p, cpuq)),
				f2(res.ratio(sc, tr, p, avg)), f2(res.ratio(sc, tr, p, p50)), f2(res.ratio(sc, tr, p, p99)))
		}
		if sc == "miss" && len(res[key{sc, tr, "dotproxy-nocache"}]) > 0 {
			fmt.Fprintf(w, "  %s cache on vs off (dotproxy/dotproxy-nocache)  QPS %s  CPU/q %s\n", tr,
				f2(res.ratioOf(sc, tr, "dotproxy", "dotproxy-nocache", qps)),
				f2(res.ratioOf(sc, tr, "dotproxy", "dotproxy-nocache", cpuq)))
		}
	}
	if sc == "miss" {
		res.transportRatios(w)
	}
}

// has reports whether any run of scenario sc was read.
func (res results) has(sc string) bool {
	for k := range res {
		if k.scenario == sc {
			return true
		}
	}
	return false
}

func f0(v float64) string { return fmtf("%.0f", v) }
func f1(v float64) string { return fmtf("%.1f", v) }
func f2(v float64) string { return fmtf("%.2f", v) }
func f3(v float64) string { return fmtf("%.3f", v) }

func fmtf(format string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}
