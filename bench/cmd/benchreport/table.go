package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// Target values, from issues 3 and 4.
const (
	targetAddedP50MS = 0.2 // p50 latency added over the ceiling at 50% load
	targetIdleRSSMB  = 30
	targetSatRSSMB   = 100
	targetConns      = 2 // TLS connections per upstream
)

var (
	scenarios  = []string{"miss", "half", "hit", "hitrate"}
	transports = []string{"udp", "tcp"}
	peers      = []string{"ceiling", "dotproxy", "unbound", "dnsdist"}
	titles     = map[string]string{
		"miss": "cache miss, saturation (distinct names)",
		"half": "cache miss at 50% of dotproxy's saturation QPS (same -Q for every target)",
		"hit":  "cache hit, saturation (a small name set, warmed; the ceiling row is the miss run's)",
		"hitrate": "cache hit at a fixed rate (same -Q for every target): CPU µs/q is the target's own cost per hit,\n" +
			"free of dnsperf's share of the two cores",
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
	mine := res[key{scenario, transport, "dotproxy"}]
	theirs := res[key{scenario, transport, peer}]
	var v []float64
	for _, a := range mine {
		for _, b := range theirs {
			if a.repeat == b.repeat && f(b) != 0 {
				if x := f(a) / f(b); !math.IsNaN(x) {
					v = append(v, x)
				}
			}
		}
	}
	return median(v)
}

// addedP50 is the median over the repeats of dotproxy's p50 minus the
// ceiling's at 50% load.
func (res results) addedP50(transport string) float64 {
	var v []float64
	for _, a := range res[key{"half", transport, "dotproxy"}] {
		for _, c := range res[key{"half", transport, "ceiling"}] {
			if a.repeat == c.repeat {
				v = append(v, a.p50MS-c.p50MS)
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

func report(w io.Writer, res results, info map[string]float64) {
	n := 0
	for _, rs := range res {
		n = max(n, len(rs))
	}
	fmt.Fprintf(w, "dotproxy benchmark: medians of %d repeat(s); load average at start %.2f, at end %.2f (2 shared cores)\n",
		n, info["load_start"], info["load_end"])
	for _, sc := range scenarios {
		fmt.Fprintf(w, "\n%s\n", titles[sc])
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "transport\tpeer\tQPS\t-Q\tavg ms\tp50 ms\tp99 ms\tlost\tCPU µs/q\tCPU%\tconns/upstream\tconns opened\tRSS idle MB\tRSS end MB\tdnsperf CPU%\t")
		for _, tr := range transports {
			for _, p := range peers {
				k := key{sc, tr, p}
				if sc == "hit" && p == "ceiling" {
					k.scenario = "miss"
				}
				if len(res[k]) == 0 {
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
		if sc == "half" {
			for _, tr := range transports {
				fmt.Fprintf(w, "%s: p50 added by dotproxy over the ceiling: %s ms\n", tr, f3(res.addedP50(tr)))
			}
			continue
		}
		fmt.Fprintln(w, "ratios dotproxy/peer (median of per-repeat ratios; QPS >1 and the rest <1 favour dotproxy):")
		for _, tr := range transports {
			for _, p := range []string{"unbound", "dnsdist"} {
				fmt.Fprintf(w, "  %s vs %-8s QPS %s  CPU/q %s  avg %s  p50 %s  p99 %s\n", tr, p,
					f2(res.ratio(sc, tr, p, qps)), f2(res.ratio(sc, tr, p, cpuq)),
					f2(res.ratio(sc, tr, p, avg)), f2(res.ratio(sc, tr, p, p50)), f2(res.ratio(sc, tr, p, p99)))
			}
		}
	}
	if info["cache_entries"] > 0 {
		fmt.Fprintf(w, "\ndotproxy memory per cached entry (%.0f distinct names cached): %.0f bytes of live heap after GC, %.0f bytes of RSS\n",
			info["cache_entries"], info["entry_heap_bytes"], info["entry_rss_bytes"])
	}
	targets(w, res)
}

func targets(w io.Writer, res results) {
	fmt.Fprintln(w, "\ntargets (issues 3 and 4):")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	for _, tr := range transports {
		cpu := res.ratio("miss", tr, "unbound", cpuq)
		fmt.Fprintf(w, "  miss %s CPU/q ≤ Unbound's: ratio %s  %s\n", tr, f2(cpu), verdict(cpu <= 1))
		q := res.ratio("miss", tr, "unbound", qps)
		fmt.Fprintf(w, "  miss %s QPS ≥ Unbound's: ratio %s  %s\n", tr, f2(q), verdict(q >= 1))
		c := res.median(key{"miss", tr, "dotproxy"}, metric("conns_max"))
		fmt.Fprintf(w, "  miss %s TLS connections per upstream ≤ %d: %s  %s\n", tr, targetConns, f0(c), verdict(c <= targetConns))
		a := res.addedP50(tr)
		fmt.Fprintf(w, "  %s p50 added at 50%% load < %.1f ms: %s ms  %s\n", tr, targetAddedP50MS, f3(a), verdict(a < targetAddedP50MS))
		// Against each peer by the median of per-repeat ratios, as the
		// other targets; the medians' own ratio beside it.
		worst := math.Min(res.ratio("hit", tr, "unbound", qps), res.ratio("hit", tr, "dnsdist", qps))
		best := math.Max(res.median(key{"hit", tr, "unbound"}, qps), res.median(key{"hit", tr, "dnsdist"}, qps))
		h := res.median(key{"hit", tr, "dotproxy"}, qps)
		fmt.Fprintf(w, "  hit %s QPS ≥ best of Unbound/dnsdist: ratio %s (medians %s vs %s)  %s\n",
			tr, f2(worst), f0(h), f0(best), verdict(worst >= 1))
		if len(res[key{"hitrate", tr, "dotproxy"}]) > 0 {
			c := math.Max(res.ratio("hitrate", tr, "unbound", cpuq), res.ratio("hitrate", tr, "dnsdist", cpuq))
			fmt.Fprintf(w, "    (%s CPU per hit at a fixed rate vs the more frugal peer's: ratio %s)\n", tr, f2(c))
		}
	}
	idle := math.Inf(-1)
	sat := math.Inf(-1)
	for _, tr := range transports {
		idle = math.Max(idle, mb(res.median(key{"miss", tr, "dotproxy"}, metric("rss_idle_kb"))))
		for _, sc := range []string{"miss", "hit"} {
			sat = math.Max(sat, mb(res.median(key{sc, tr, "dotproxy"}, metric("rss_max_kb"))))
		}
	}
	fmt.Fprintf(w, "  dotproxy RSS idle < %d MB: %s MB  %s\n", targetIdleRSSMB, f1(idle), verdict(idle < targetIdleRSSMB))
	fmt.Fprintf(w, "  dotproxy RSS at saturation < %d MB: %s MB (highest sample of any run)  %s\n", targetSatRSSMB, f1(sat), verdict(sat < targetSatRSSMB))
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
