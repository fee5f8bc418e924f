package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// exploreScenario is the run of dotproxy, policy fastest, with a third
// upstream answering late, at a fixed rate of fresh names.
const exploreScenario = "explore"

// upstreamQueries returns the queries each upstream received during a
// run, from metrics.env keys upstream_NAME_queries, by NAME.
func (r *run) upstreamQueries() map[string]float64 {
	m := map[string]float64{}
	for k, v := range r.metrics {
		if name, ok := strings.CutPrefix(k, "upstream_"); ok {
			if name, ok := strings.CutSuffix(name, "_queries"); ok && name != "" {
				m[name] = v
			}
		}
	}
	return m
}

// share returns a function giving the queries upstream name received as
// a fraction of the client queries answered, in percent; health probes
// and hedged attempts count, so the shares may add up to more than 100.
func share(name string) func(*run) float64 {
	return func(r *run) float64 {
		q, ok := r.upstreamQueries()[name]
		if !ok || r.completed == 0 {
			return nan
		}
		return q / r.completed * 100
	}
}

// exploreUpstreams lists the upstream names seen in the exploration runs,
// the slow one last.
func (res results) exploreUpstreams() []string {
	var names []string
	for _, tr := range transports {
		for _, r := range res[key{exploreScenario, tr, "dotproxy"}] {
			for name := range r.upstreamQueries() {
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		if (a == slowUpstream) != (b == slowUpstream) {
			if a == slowUpstream {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	return names
}

func (res results) exploreTable(w io.Writer) {
	if !res.has(exploreScenario) {
		return
	}
	names := res.exploreUpstreams()
	fmt.Fprintf(w, "\nexploration: dotproxy on its default configuration (policy fastest), upstream %q answering late,\n", slowUpstream)
	fmt.Fprintln(w, "fresh names at a fixed rate; each upstream's queries in % of the client queries answered (probes included)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "transport\tQPS\t-Q\tlost\tp50 ms\tp99 ms\tCPU µs/q\t"
	for _, name := range names {
		head += name + " %\t"
	}
	fmt.Fprintln(tw, head)
	for _, tr := range transports {
		k := key{exploreScenario, tr, "dotproxy"}
		if len(res[k]) == 0 {
			continue
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t", tr, f0(res.median(k, qps)), f0(res.median(k, metric("qps_limit"))),
			f0(res.median(k, lost)), f3(res.median(k, p50)), f2(res.median(k, p99)), f1(res.median(k, cpuq)))
		for _, name := range names {
			row += f2(res.median(k, share(name))) + "\t"
		}
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
}

// exploreTargets prints issue 11's exploration targets.
func (res results) exploreTargets(w io.Writer) {
	for _, tr := range transports {
		k := key{exploreScenario, tr, "dotproxy"}
		if len(res[k]) == 0 {
			continue
		}
		s := res.median(k, share(slowUpstream))
		fmt.Fprintf(w, "  exploration %s: queries to the slow upstream ≤ %.1f%% of client queries: %s%%  %s\n",
			tr, targetSlowSharePct, f2(s), verdict(s <= targetSlowSharePct))
		q := res.median(k, p99)
		fmt.Fprintf(w, "  exploration %s: client p99 ≤ %.0f ms: %s ms  %s\n", tr, targetExploreP99MS, f2(q), verdict(q <= targetExploreP99MS))
	}
}
