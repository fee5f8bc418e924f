package main

import (
	"strings"
	"testing"
)

// TestTransportTargets checks issue 13's verdicts: CPU per query taken
// as the median of per-repeat ratios, against dnsdist's DoH row and
// against dotproxy's own DoT row, and never met against a row not run.
func TestTransportTargets(t *testing.T) {
	// cpu is a run whose CPU per query is us microseconds (one tick of
	// 100 Hz over 10000/us queries).
	cpu := func(rep int, tr, peer string, us float64) *run {
		return &run{repeat: rep, scenario: "miss", transport: tr, peer: peer, completed: 1e4 / us,
			metrics: map[string]float64{"cpu_ticks": 1, "clk_tck": 100, "conns_max": 2}}
	}
	res := newResults([]*run{
		// udp: DoH 30 µs against dnsdist's 40 and DoT's 25 (1.2×): both met.
		cpu(1, "udp", dotproxyDoH, 30), cpu(1, "udp", dnsdistDoH, 40), cpu(1, "udp", "dotproxy", 25),
		cpu(2, "udp", dotproxyDoH, 30), cpu(2, "udp", dnsdistDoH, 20), cpu(2, "udp", "dotproxy", 25),
		cpu(3, "udp", dotproxyDoH, 30), cpu(3, "udp", dnsdistDoH, 60), cpu(3, "udp", "dotproxy", 25),
		// tcp: DoH 40 µs against DoT's 20 (2×), and no dnsdist row.
		cpu(1, "tcp", dotproxyDoH, 40), cpu(1, "tcp", "dotproxy", 20),
	})
	var b strings.Builder
	res.transportTargets(&b)
	out := b.String()
	for _, want := range []string{
		"miss udp DoH CPU/q ≤ dnsdist's over DoH: ratio 0.75  met", // median of 0.75, 1.5, 0.5
		"miss udp DoH CPU/q ≤ 1.5× dotproxy's over DoT: ratio 1.20  met",
		"miss udp DoH connections per upstream ≤ 2: 2  met",
		"miss tcp DoH CPU/q ≤ dnsdist's over DoH: ratio -  NOT met",
		"miss tcp DoH CPU/q ≤ 1.5× dotproxy's over DoT: ratio 2.00  NOT met",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no line %q in:\n%s", want, out)
		}
	}

	b.Reset()
	res.transportRatios(&b)
	if out := b.String(); !strings.Contains(out, "udp dotproxy-doh/dotproxy  QPS") || strings.Contains(out, "dotproxy-doq") {
		t.Errorf("transport ratios: want the pairs run and only those:\n%s", out)
	}

	// At one offered load: DoH 90 µs against dnsdist's 120 and DoT's 100.
	at := func(r *run) *run { r.scenario = "xrate2000"; return r }
	// wantLines fails t for each line of want that the targets and
	// ratios of runs do not print.
	wantLines := func(runs []*run, want ...string) {
		t.Helper()
		res := newResults(runs)
		var b strings.Builder
		res.transportTargets(&b)
		res.transportRatios(&b)
		out := b.String()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("no line %q in:\n%s", w, out)
			}
		}
	}
	wantLines([]*run{
		cpu(1, "udp", dotproxyDoH, 30),
		at(cpu(1, "udp", dotproxyDoH, 90)), at(cpu(1, "udp", dnsdistDoH, 120)), at(cpu(1, "udp", "dotproxy", 100)),
	},
		"2000 qps udp DoH CPU/q ≤ dnsdist's over DoH: ratio 0.75  met",
		"2000 qps udp DoH CPU/q ≤ 1.5× dotproxy's over DoT: ratio 0.90  met",
		"udp dotproxy-doh/dnsdist-doh  CPU/q 0.75 (90.0 against 120.0 µs)",
	)

	// Against the dnsdist responder: DoH 33 µs against DoT's 30 over UDP,
	// 50 against 30 over TCP.
	wantLines([]*run{
		cpu(1, "udp", dotproxyDoHd, 33), cpu(1, "udp", dotproxyDoTd, 30),
		cpu(1, "tcp", dotproxyDoHd, 50), cpu(1, "tcp", dotproxyDoTd, 30),
	},
		"miss udp DoH CPU/q ≤ 1.5× dotproxy's over DoT, both to dnsdist's frontends: ratio 1.10  met",
		"miss tcp DoH CPU/q ≤ 1.5× dotproxy's over DoT, both to dnsdist's frontends: ratio 1.67  NOT met",
		"udp dotproxy-doh-dnsdist/dotproxy-dot-dnsdist  QPS",
	)

	b.Reset()
	newResults([]*run{cpu(1, "udp", "dotproxy", 25)}).transportTargets(&b)
	newResults([]*run{cpu(1, "udp", "dotproxy", 25)}).transportRatios(&b)
	if b.Len() != 0 {
		t.Errorf("without transport rows, printed:\n%s", b.String())
	}
}
