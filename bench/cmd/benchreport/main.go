// Command benchreport reads what bench/run wrote under one run directory
// (rN/SCENARIO-TRANSPORT-PEER/{dnsperf.txt,metrics.env}) and prints the
// tables of medians over the repeats (saturation, fixed rates, cache
// hits, exploration), the ratios dotproxy/peer and the latency added over
// the ceiling (medians of the figures within each repeat, since the
// machine is shared) and the targets of issues 3, 4, 11 and 13. It also
// writes every run's figures to runs.tsv in that directory.
//
//	benchreport bench/out/run-20260101-120000
package main

import (
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

var nan = math.NaN()

func main() {
	log.SetPrefix("benchreport: ")
	log.SetFlags(0)
	if len(os.Args) != 2 {
		log.Fatal("usage: benchreport RUNDIR")
	}
	dir := os.Args[1]
	runs, err := readAll(dir)
	if err != nil {
		log.Fatal(err)
	}
	if len(runs) == 0 {
		log.Fatalf("%s: no runs", dir)
	}
	if err := writeTSV(filepath.Join(dir, "runs.tsv"), runs); err != nil {
		log.Fatal(err)
	}
	info, _ := readEnv(filepath.Join(dir, "info.env"))
	header, _ := readLines(filepath.Join(dir, "info.txt"))
	report(os.Stdout, newResults(runs), info, header)
}

func readAll(dir string) ([]*run, error) {
	repeats, err := filepath.Glob(filepath.Join(dir, "r*"))
	if err != nil {
		return nil, err
	}
	var runs []*run
	for _, rd := range repeats {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(rd), "r"))
		if err != nil {
			continue
		}
		subs, _ := filepath.Glob(filepath.Join(rd, "*-*-*"))
		sort.Strings(subs)
		for _, sd := range subs {
			r, err := readRun(sd, n)
			if err != nil {
				log.Printf("skipping %s: %v", sd, err)
				continue
			}
			runs = append(runs, r)
		}
	}
	return runs, nil
}

func writeTSV(path string, runs []*run) error {
	var b strings.Builder
	b.WriteString("repeat\tscenario\ttransport\tpeer\tqps\tcompleted\tlost\tavg_ms\tp50_ms\tp99_ms\tcpu_us_per_query\tconns_max_per_upstream\tconns_opened\trss_idle_kb\trss_end_kb\tqps_limit\tdnsperf_cpu_s\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "%d\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\n",
			r.repeat, r.scenario, r.transport, r.peer, r.qps, r.completed, r.lost, r.avgMS, r.p50MS, r.p99MS,
			r.cpuPerQueryUS(), r.metric("conns_max"), r.metric("conns_opened"), r.metric("rss_idle_kb"),
			r.metric("rss_end_kb"), r.metric("qps_limit"), r.metric("dnsperf_cpu_s"))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
