package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// ratePrefix names the fixed-rate cache-miss scenarios: rate1000 is
// dnsperf -Q 1000 on fresh names.
const ratePrefix = "rate"

// rateOf returns the rate of a fixed-rate scenario name such as
// "rate5000", and false for any other scenario.
func rateOf(scenario string) (int, bool) {
	digits, ok := strings.CutPrefix(scenario, ratePrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// rates returns the rates of the fixed-rate scenarios read, lowest first.
func (res results) rates() []int {
	var out []int
	for k := range res {
		if n, ok := rateOf(k.scenario); ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// bestRival returns the smaller over the rivals (Unbound, dnsdist) of
// their latency f added over the ceiling, and which rival that is; NaN
// when no rival ran, so that no target is met against nothing.
func (res results) bestRival(sc, tr string, f func(*run) float64) (float64, string) {
	best, who := nan, "-"
	for _, p := range rivals {
		if v := res.added(sc, tr, p, f); !math.IsNaN(v) && (math.IsNaN(best) || v < best) {
			best, who = v, p
		}
	}
	return best, who
}

// rateTables prints, for each fixed rate, every target's latency and
// what it adds over the ceiling (the same responder answering plain DNS)
// in the same repeat: the latency a user sees at a given load, which no
// saturation run shows.
func (res results) rateTables(w io.Writer) {
	rs := res.rates()
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\ncache miss at fixed rates (fresh names, same -Q for every target, each on its default configuration);")
	fmt.Fprintln(w, "added = the target's latency minus the ceiling's in the same repeat")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "-Q\ttransport\tpeer\tQPS\tlost\tp50 ms\tp99 ms\tp50 added\tp99 added\tCPU µs/q\tCPU%\tdnsperf CPU%\t")
	for _, n := range rs {
		sc := ratePrefix + strconv.Itoa(n)
		for _, tr := range transports {
			for _, p := range peers {
				k := key{sc, tr, p}
				if len(res[k]) == 0 {
					continue
				}
				addP50, addP99 := "", ""
				if p != "ceiling" {
					addP50, addP99 = f3(res.added(sc, tr, p, p50)), f2(res.added(sc, tr, p, p99))
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", n, tr, p,
					f0(res.median(k, qps)), f0(res.median(k, lost)), f3(res.median(k, p50)), f2(res.median(k, p99)),
					addP50, addP99, f1(res.median(k, cpuq)), f0(res.median(k, serverCPU)), f0(res.median(k, dnsperfCPU)))
			}
		}
	}
	tw.Flush()
}

// rateTargets prints issue 11's latency targets at every fixed rate:
// dotproxy's p99 at most the better peer's, and its p50 added over the
// ceiling within targetP50Slack of the better peer's.
func (res results) rateTargets(w io.Writer) {
	for _, n := range res.rates() {
		sc := ratePrefix + strconv.Itoa(n)
		for _, tr := range transports {
			if len(res[key{sc, tr, "dotproxy"}]) == 0 {
				continue
			}
			mine99 := res.added(sc, tr, "dotproxy", p99)
			best99, who99 := res.bestRival(sc, tr, p99)
			fmt.Fprintf(w, "  %d qps %s p99 added ≤ the better peer's: %s ms vs %s ms (%s)  %s\n",
				n, tr, f2(mine99), f2(best99), who99, verdict(mine99 <= best99))
			mine50 := res.added(sc, tr, "dotproxy", p50)
			best50, who50 := res.bestRival(sc, tr, p50)
			fmt.Fprintf(w, "  %d qps %s p50 added ≤ the better peer's + %.2f ms: %s ms vs %s ms (%s)  %s\n",
				n, tr, targetP50Slack, f3(mine50), f3(best50), who50, verdict(mine50 <= best50+targetP50Slack))
		}
	}
}
