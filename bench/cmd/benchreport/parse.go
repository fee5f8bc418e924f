package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// run is one dnsperf run against one target: what dnsperf reported and
// what bench/run measured around it.
type run struct {
	repeat    int
	scenario  string // miss, rateN (N queries a second), hit, hitrate, explore
	transport string // udp, tcp
	peer      string // ceiling, dotproxy, dotproxy-nocache, unbound, dnsdist

	qps          float64
	completed    float64
	lost         float64
	avgMS        float64
	p50MS, p99MS float64
	metrics      map[string]float64 // metrics.env
}

// metric returns a metrics.env value, NaN when bench/run did not record it.
func (r *run) metric(key string) float64 {
	if v, ok := r.metrics[key]; ok {
		return v
	}
	return nan
}

// cpuPerQueryUS is the server process's CPU time (user and system) per
// completed query, in microseconds.
func (r *run) cpuPerQueryUS() float64 {
	ticks, hz := r.metric("cpu_ticks"), r.metric("clk_tck")
	if r.completed == 0 || hz == 0 {
		return nan
	}
	return ticks / hz / r.completed * 1e6
}

// readRun reads the directory bench/run wrote for one run, named
// SCENARIO-TRANSPORT-PEER under a repeat directory rN.
func readRun(dir string, repeat int) (*run, error) {
	parts := strings.SplitN(filepath.Base(dir), "-", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("%s: not SCENARIO-TRANSPORT-PEER", dir)
	}
	r := &run{repeat: repeat, scenario: parts[0], transport: parts[1], peer: parts[2]}
	var err error
	if r.metrics, err = readEnv(filepath.Join(dir, "metrics.env")); err != nil {
		return nil, err
	}
	if err := r.readDnsperf(filepath.Join(dir, "dnsperf.txt")); err != nil {
		return nil, err
	}
	return r, nil
}

// readDnsperf takes the totals from dnsperf's statistics and the
// percentiles from its -v lines ("> NOERROR name A 0.000214"; a timed-out
// query is "> T name A" and has no latency).
func (r *run) readDnsperf(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var lat []float64
	avgSeen := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "> ") {
			fields := strings.Fields(line)
			if len(fields) >= 5 && fields[1] != "T" {
				if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
					lat = append(lat, v*1e3)
				}
			}
			continue
		}
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		first := firstNumber(val)
		switch key {
		case "Queries completed":
			r.completed = first
		case "Queries lost":
			r.lost = first
		case "Queries per second":
			r.qps = first
		case "Average Latency (s)":
			// The first is the queries'; over TCP a second one follows
			// for the connections.
			if !avgSeen {
				r.avgMS, avgSeen = first*1e3, true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !avgSeen {
		return fmt.Errorf("%s: no dnsperf statistics", path)
	}
	slices.Sort(lat)
	r.p50MS, r.p99MS = percentile(lat, 50), percentile(lat, 99)
	return nil
}

func firstNumber(s string) float64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nan
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return nan
	}
	return v
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return nan
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// readEnv reads KEY=NUMBER lines; other lines are ignored.
func readEnv(path string) (map[string]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			m[strings.TrimSpace(k)] = f
		}
	}
	return m, nil
}

// readLines returns the non-empty lines of a text file, such as the run's
// info.txt (date, commit, machine, mode).
func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out, nil
}
