package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dnsperfTCP is dnsperf 2.10's output with -v over TCP: the queries'
// statistics, then the connections' with a second average latency, then
// one line per query.
const dnsperfTCP = `DNS Performance Testing Tool
Version 2.10.0

Statistics:

  Queries sent:         5
  Queries completed:    4 (80.00%)
  Queries lost:         1 (20.00%)

  Response codes:       NOERROR 4 (100.00%)
  Run time (s):         2.163911
  Queries per second:   4336.130275

  Average Latency (s):  0.042177 (min 0.000460, max 0.201212)
  Latency StdDev (s):   0.035272

Connection Statistics:

  Reconnections:        0

  Average Latency (s):  0.271746 (min 0.266356, max 0.274180)

> NOERROR q1.bench.example A 0.000400
> NOERROR q0.bench.example A 0.000100
> T q4.bench.example A
> NOERROR q2.bench.example A 0.000300
> NOERROR q3.bench.example A 0.000200
`

func writeRun(t *testing.T, dir, dnsperf, metrics string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"dnsperf.txt": dnsperf, "metrics.env": metrics} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestReadRun(t *testing.T) {
	tests := []struct {
		dir                       string
		scenario, transport, peer string
	}{
		{"miss-tcp-dotproxy", "miss", "tcp", "dotproxy"},
		{"miss-udp-dotproxy-nocache", "miss", "udp", "dotproxy-nocache"},
		{"rate5000-tcp-unbound", "rate5000", "tcp", "unbound"},
		{"explore-udp-dotproxy", "explore", "udp", "dotproxy"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "r2", tt.dir)
			writeRun(t, dir, dnsperfTCP, "cpu_ticks=10\nclk_tck=100\nupstream_slow_queries=1\nnot a number=x\n")
			r, err := readRun(dir, 2)
			if err != nil {
				t.Fatal(err)
			}
			if r.repeat != 2 || r.scenario != tt.scenario || r.transport != tt.transport || r.peer != tt.peer {
				t.Errorf("run %d %q %q %q", r.repeat, r.scenario, r.transport, r.peer)
			}
			if r.completed != 4 || r.lost != 1 || !near(r.qps, 4336.130275) || !near(r.avgMS, 42.177) {
				t.Errorf("completed %v lost %v qps %v avg %v ms", r.completed, r.lost, r.qps, r.avgMS)
			}
			// Nearest rank over the four latencies 0.1..0.4 ms; the lost
			// query has none.
			if !near(r.p50MS, 0.2) || !near(r.p99MS, 0.4) {
				t.Errorf("p50 %v p99 %v ms", r.p50MS, r.p99MS)
			}
			if !near(r.cpuPerQueryUS(), 0.1/4*1e6) {
				t.Errorf("CPU per query %v µs", r.cpuPerQueryUS())
			}
			if _, ok := r.metrics["not a number"]; ok {
				t.Error("kept a line that is not KEY=NUMBER")
			}
		})
	}
}

func TestReadRunRejects(t *testing.T) {
	base := t.TempDir()
	noStats := filepath.Join(base, "miss-udp-dotproxy")
	writeRun(t, noStats, "> NOERROR q.bench.example A 0.0001\n", "")
	if _, err := readRun(noStats, 1); err == nil {
		t.Error("a dnsperf output without statistics was read")
	}
	badName := filepath.Join(base, "missudp")
	writeRun(t, badName, dnsperfTCP, "")
	if _, err := readRun(badName, 1); err == nil {
		t.Error("a directory not named SCENARIO-TRANSPORT-PEER was read")
	}
}

func TestRateOf(t *testing.T) {
	for name, want := range map[string]int{"rate1000": 1000, "rate10000": 10000, "rate": 0, "rate-5": 0, "rate0": 0, "miss": 0, "hitrate": 0} {
		got, ok := rateOf(name)
		if got != want || ok != (want > 0) {
			t.Errorf("rateOf(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
}

func TestUpstreamShares(t *testing.T) {
	r := &run{completed: 2000, metrics: map[string]float64{
		"upstream_up1_queries": 1200, "upstream_up2_queries": 790, "upstream_slow_queries": 10,
		"upstream__queries": 5, "cpu_ticks": 3,
	}}
	got := r.upstreamQueries()
	if len(got) != 3 || got["up1"] != 1200 || got["slow"] != 10 {
		t.Errorf("upstreamQueries() = %v", got)
	}
	if s := share("slow")(r); !near(s, 0.5) {
		t.Errorf("slow share %v%%, want 0.5", s)
	}
	if s := share("absent")(r); !math.IsNaN(s) {
		t.Errorf("absent upstream's share %v, want NaN", s)
	}
	res := newResults([]*run{{scenario: exploreScenario, transport: "udp", peer: "dotproxy", metrics: r.metrics}})
	if names := res.exploreUpstreams(); len(names) != 3 || names[2] != slowUpstream {
		t.Errorf("exploreUpstreams() = %v, want the slow one last", names)
	}
}

// TestAddedAndRates checks that latency added over the ceiling is taken
// within each repeat, then the median, and that the rates are found.
func TestAddedAndRates(t *testing.T) {
	mk := func(rep int, sc, peer string, p99 float64) *run {
		return &run{repeat: rep, scenario: sc, transport: "udp", peer: peer, p99MS: p99}
	}
	res := newResults([]*run{
		mk(1, "rate5000", "ceiling", 1), mk(1, "rate5000", "dotproxy", 2), mk(1, "rate5000", "dnsdist", 9),
		mk(2, "rate5000", "ceiling", 5), mk(2, "rate5000", "dotproxy", 6), mk(2, "rate5000", "dnsdist", 6.5),
		mk(3, "rate5000", "ceiling", 2), mk(3, "rate5000", "dotproxy", 3.5),
		mk(1, "rate1000", "ceiling", 1), mk(1, "miss", "ceiling", 1),
	})
	if got := res.added("rate5000", "udp", "dotproxy", p99); !near(got, 1) {
		t.Errorf("dotproxy's p99 added %v, want the median of 1, 1, 1.5 = 1", got)
	}
	if got, who := res.bestRival("rate5000", "udp", p99); !near(got, 4.75) || who != "dnsdist" {
		t.Errorf("best rival %v (%s), want dnsdist's median of 8 and 1.5 = 4.75", got, who)
	}
	if got, who := res.bestRival("rate1000", "udp", p99); !math.IsNaN(got) || who != "-" {
		t.Errorf("best rival with none run: %v (%s), want NaN", got, who)
	}
	if got := res.rates(); len(got) != 2 || got[0] != 1000 || got[1] != 5000 {
		t.Errorf("rates() = %v", got)
	}
}

func TestReadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "info.txt")
	if err := os.WriteFile(path, []byte("date=x\n\n  commit=abc  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readLines(path)
	if err != nil || len(got) != 2 || got[1] != "commit=abc" {
		t.Errorf("readLines = %q, %v", got, err)
	}
}

// TestChangedMachineSaid: a run that changed the guest's halt polling says
// at its head and above its targets that it is not the run of record; a
// run of the machine as it is says nothing of the kind.
func TestChangedMachineSaid(t *testing.T) {
	const said = "NOT the run of record: the guest's halt polling was set to 200000 ns for this run"
	for _, tc := range []struct {
		name string
		info map[string]float64
		want int // times the report says it
	}{
		{"polling set", map[string]float64{"load_start": 1, "halt_poll_set_ns": 200000}, 2},
		{"the machine as it is", map[string]float64{"load_start": 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			report(&b, newResults(nil), tc.info, []string{"date=2026-12-07"})
			if got := strings.Count(b.String(), said); got != tc.want {
				t.Errorf("said %d times, want %d:\n%s", got, tc.want, b.String())
			}
		})
	}
}
