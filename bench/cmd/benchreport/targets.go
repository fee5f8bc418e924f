package main

import (
	"fmt"
	"io"
	"math"
)

// Target values, from issues 3, 4 and 11 (issue 13's are in
// transports.go). Speed targets live here and in bench/README.md, never in
// timed tests.
const (
	targetMissCPUvsUnbound = 0.8  // miss CPU per query, at most this × Unbound's
	targetCacheCost        = 1.10 // a miss with the cache on, at most this × with it off
	targetP50Slack         = 0.05 // ms: p50 added at a fixed rate, at most the better peer's plus this
	targetSlowSharePct     = 0.5  // % of client queries that reach the slow upstream
	targetExploreP99MS     = 5.0  // ms: client p99 while exploring
	targetIdleRSSMB        = 30
	targetSatRSSMB         = 100
	targetConns            = 2 // TLS connections per upstream

	// slowUpstream is the name bench/run gives the late upstream.
	slowUpstream = "slow"
)

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func targets(w io.Writer, res results) {
	fmt.Fprintln(w, "\ntargets (issues 3, 4, 11 and 13; every target on its default configuration):")
	for _, tr := range transports {
		cpu := res.ratio("miss", tr, "unbound", cpuq)
		fmt.Fprintf(w, "  miss %s CPU/q ≤ %.1f× Unbound's: ratio %s  %s\n", tr, targetMissCPUvsUnbound, f2(cpu), verdict(cpu <= targetMissCPUvsUnbound))
		q := res.ratio("miss", tr, "unbound", qps)
		fmt.Fprintf(w, "  miss %s QPS ≥ Unbound's: ratio %s  %s\n", tr, f2(q), verdict(q >= 1))
		if len(res[key{"miss", tr, "dotproxy-nocache"}]) > 0 {
			c := res.ratioOf("miss", tr, "dotproxy", "dotproxy-nocache", cpuq)
			fmt.Fprintf(w, "  miss %s CPU/q cache on ≤ %.2f× cache off: ratio %s  %s\n", tr, targetCacheCost, f3(c), verdict(c <= targetCacheCost))
		}
		c := res.median(key{"miss", tr, "dotproxy"}, metric("conns_max"))
		fmt.Fprintf(w, "  miss %s TLS connections per upstream ≤ %d: %s  %s\n", tr, targetConns, f0(c), verdict(c <= targetConns))
	}
	res.transportTargets(w)
	res.rateTargets(w)
	for _, tr := range transports {
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
	res.exploreTargets(w)
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
