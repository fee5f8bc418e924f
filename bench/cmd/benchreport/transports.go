package main

import (
	"fmt"
	"io"
	"strings"
)

// The peers whose upstreams are not DoT (issue 13): dotproxy on its
// default configuration with DoH (HTTP/2 or HTTP/3) or DoQ upstreams, and
// dnsdist, packet cache on as in its DoT row, with DoH backends. bench/run
// runs them in the cache-miss saturation scenario only.
const (
	dotproxyDoH = "dotproxy-doh"
	dotproxyH3  = "dotproxy-h3"
	dotproxyDoQ = "dotproxy-doq"
	dnsdistDoH  = "dnsdist-doh"
)

// The same comparison of DoH with DoT against a second responder, dnsdist
// answering every name itself on its DoT and DoH frontends: there the DoH
// row is not held to a fraction of the DoT row's rate by the first
// responder's HTTP/2 server, so the two rows compare what each transport
// costs dotproxy.
const (
	dotproxyDoTd = "dotproxy-dot-dnsdist"
	dotproxyDoHd = "dotproxy-doh-dnsdist"
)

// Issue 13's targets for a cache miss over DoH.
const (
	targetDoHvsDnsdist = 1.0 // dotproxy's CPU per query, at most this × dnsdist's, both over DoH
	targetDoHvsDoT     = 1.5 // dotproxy's CPU per query over DoH, at most this × its own over DoT
)

// xratePrefix names the cache-miss runs over DoT and DoH at one offered
// load (bench/run -T): xrate2000 is 2,000 queries a second, UDP clients.
const xratePrefix = "xrate"

// xratePairs are the comparisons of those runs, a/b.
var xratePairs = [][2]string{{dotproxyDoH, dnsdistDoH}, {dotproxyDoH, "dotproxy"}, {dnsdistDoH, "dotproxy"}}

// xrateScenario is the equal-load scenario read, "" when there is none.
func (res results) xrateScenario() string {
	for k := range res {
		if strings.HasPrefix(k.scenario, xratePrefix) {
			return k.scenario
		}
	}
	return ""
}

// transportPairs are the comparisons of the transport rows, a/b: the same
// transport in two proxies, or one proxy over two transports.
var transportPairs = [][2]string{
	{dotproxyDoH, dnsdistDoH},
	{dotproxyDoH, "dotproxy"},
	{dotproxyH3, "dotproxy"},
	{dotproxyDoQ, "dotproxy"},
	{dnsdistDoH, "dnsdist"},
	{dotproxyDoHd, dotproxyDoTd},
}

// hasTransportRows reports whether any run over an upstream transport
// other than DoT was read.
func (res results) hasTransportRows() bool {
	for k := range res {
		switch k.peer {
		case dotproxyDoH, dotproxyH3, dotproxyDoQ, dnsdistDoH, dotproxyDoTd, dotproxyDoHd:
			return true
		}
	}
	return false
}

// transportRatios prints, below the cache-miss table, the ratios of the
// transport rows: what DoH, HTTP/3 and DoQ cost dotproxy against DoT, and
// dotproxy's DoH against dnsdist's.
func (res results) transportRatios(w io.Writer) {
	if !res.hasTransportRows() {
		return
	}
	fmt.Fprintln(w, "ratios by upstream transport, a/b (median of per-repeat ratios; QPS >1 and the rest <1 favour a):")
	for _, tr := range transports {
		for _, p := range transportPairs {
			if len(res[key{"miss", tr, p[0]}]) == 0 || len(res[key{"miss", tr, p[1]}]) == 0 {
				continue
			}
			fmt.Fprintf(w, "  %s %s/%s  QPS %s  CPU/q %s  p50 %s  p99 %s\n", tr, p[0], p[1],
				f2(res.ratioOf("miss", tr, p[0], p[1], qps)), f2(res.ratioOf("miss", tr, p[0], p[1], cpuq)),
				f2(res.ratioOf("miss", tr, p[0], p[1], p50)), f2(res.ratioOf("miss", tr, p[0], p[1], p99)))
		}
	}
	if sc := res.xrateScenario(); sc != "" {
		rate := strings.TrimPrefix(sc, xratePrefix)
		fmt.Fprintf(w, "the same offered load, %s qps of new names over UDP, a/b (median of per-repeat ratios):\n", rate)
		for _, p := range xratePairs {
			if len(res[key{sc, "udp", p[0]}]) == 0 || len(res[key{sc, "udp", p[1]}]) == 0 {
				continue
			}
			fmt.Fprintf(w, "  udp %s/%s  CPU/q %s (%s against %s µs)  p50 %s  p99 %s\n", p[0], p[1],
				f2(res.ratioOf(sc, "udp", p[0], p[1], cpuq)),
				f1(res.median(key{sc, "udp", p[0]}, cpuq)), f1(res.median(key{sc, "udp", p[1]}, cpuq)),
				f2(res.ratioOf(sc, "udp", p[0], p[1], p50)), f2(res.ratioOf(sc, "udp", p[0], p[1], p99)))
		}
	}
	// Pinned, the responder shares the load core with dnsperf: near 100%
	// together, that core, not the target, bounded the row's QPS.
	fmt.Fprintln(w, "the load core during each row, responder + dnsperf CPU% (pinned, near 100 together: it bounded the QPS):")
	for _, tr := range transports {
		fmt.Fprintf(w, "  %s:", tr)
		for _, p := range peers {
			if k := (key{"miss", tr, p}); p != "ceiling" && len(res[k]) > 0 {
				fmt.Fprintf(w, " %s %s+%s", p, f0(res.median(k, responderCPU)), f0(res.median(k, dnsperfCPU)))
			}
		}
		fmt.Fprintln(w)
	}
}

// responderCPU is the upstream responder's CPU use during the run, in
// percent of one core; NaN when bench/run did not record it.
func responderCPU(r *run) float64 {
	if real := r.metric("dnsperf_real_s"); real > 0 {
		return r.metric("responder_cpu_ticks") / r.metric("clk_tck") / real * 100
	}
	return nan
}

// transportTargets prints issue 13's targets for each client transport
// dotproxy's DoH row ran over. A missing rival row gives NaN, never met.
func (res results) transportTargets(w io.Writer) {
	for _, tr := range transports {
		if len(res[key{"miss", tr, dotproxyDoH}]) == 0 {
			continue
		}
		d := res.ratioOf("miss", tr, dotproxyDoH, dnsdistDoH, cpuq)
		fmt.Fprintf(w, "  miss %s DoH CPU/q ≤ dnsdist's over DoH: ratio %s  %s\n", tr, f2(d), verdict(d <= targetDoHvsDnsdist))
		o := res.ratioOf("miss", tr, dotproxyDoH, "dotproxy", cpuq)
		fmt.Fprintf(w, "  miss %s DoH CPU/q ≤ %.1f× dotproxy's over DoT: ratio %s  %s\n", tr, targetDoHvsDoT, f2(o), verdict(o <= targetDoHvsDoT))
		c := res.median(key{"miss", tr, dotproxyDoH}, metric("conns_max"))
		fmt.Fprintf(w, "  miss %s DoH connections per upstream ≤ %d: %s  %s\n", tr, targetConns, f0(c), verdict(c <= targetConns))
	}
	for _, tr := range transports {
		if len(res[key{"miss", tr, dotproxyDoHd}]) == 0 {
			continue
		}
		o := res.ratioOf("miss", tr, dotproxyDoHd, dotproxyDoTd, cpuq)
		fmt.Fprintf(w, "  miss %s DoH CPU/q ≤ %.1f× dotproxy's over DoT, both to dnsdist's frontends: ratio %s  %s\n",
			tr, targetDoHvsDoT, f2(o), verdict(o <= targetDoHvsDoT))
	}
	// The same targets at one offered load, where no row's CPU per query
	// is lowered by running at its saturation.
	if sc := res.xrateScenario(); sc != "" && len(res[key{sc, "udp", dotproxyDoH}]) > 0 {
		rate := strings.TrimPrefix(sc, xratePrefix)
		d := res.ratioOf(sc, "udp", dotproxyDoH, dnsdistDoH, cpuq)
		fmt.Fprintf(w, "  %s qps udp DoH CPU/q ≤ dnsdist's over DoH: ratio %s  %s\n", rate, f2(d), verdict(d <= targetDoHvsDnsdist))
		o := res.ratioOf(sc, "udp", dotproxyDoH, "dotproxy", cpuq)
		fmt.Fprintf(w, "  %s qps udp DoH CPU/q ≤ %.1f× dotproxy's over DoT: ratio %s  %s\n", rate, targetDoHvsDoT, f2(o), verdict(o <= targetDoHvsDoT))
	}
}
