package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// chaosConfig spreads queries evenly (round_robin, so every upstream
// carries traffic before, during and after its trouble) and makes health
// transitions quick enough to happen several times within one run.
const chaosConfig = `policy: round_robin
timeout: 1s
query_timeout: 3s
health: {interval: 200ms, down_interval: 200ms, timeout: 500ms, fall: 2, rise: 1}
`

const (
	chaosZone = "chaos.test."
	// chaosQPS over chaosDuration is the steady load: 4,200 queries over
	// 14 s, of which the issue asks at least chaosMinQueries.
	chaosQPS        = 300
	chaosDuration   = 14 * time.Second
	chaosMinQueries = 2000
	// chaosQueryTimeout is dnsperf's: well past dotproxy's query_timeout,
	// so a query counted lost was never answered, not answered late.
	chaosQueryTimeout = 5 * time.Second
	// chaosWarmup is steady load on all three upstreams before anything
	// breaks.
	chaosWarmup = 2 * time.Second
	// chaosHold is how long a broken upstream stays broken, under load,
	// once dotproxy has marked it down.
	chaosHold = time.Second
	// chaosEventWait bounds the wait for one health transition; with the
	// probes of chaosConfig one takes about a second.
	chaosEventWait = 8 * time.Second
)

// TestChaosUnderLoad drives dnsperf's steady load through the built
// binary to three DNS-over-TLS upstreams (two Unbounds and an in-process
// server) while one Unbound is frozen (SIGSTOP: connections stay open,
// nothing is answered) and continued, and then the other is killed
// (SIGKILL) and restarted on its port. Every query must be answered
// NOERROR, none lost; the frozen and the killed upstream must be marked
// down and up again in the log, and answer queries again afterwards. It
// logs the latency of the run (p50, p99, max), which it does not assert:
// the machine is shared.
func TestChaosUnderLoad(t *testing.T) {
	perf := tool(t, "dnsperf", "dnsperf")
	p := newPKI(t)
	frozen := startUnbound(t, p, "127.0.0.71", redirectZone(chaosZone, netip.MustParseAddr("192.0.2.71"))...)
	killed := startUnbound(t, p, "127.0.0.72", redirectZone(chaosZone, netip.MustParseAddr("192.0.2.72"))...)
	steady := dottest.Start(t, dottest.Options{
		Cert: p.leafCert(t), Addr: "127.0.0.73:0", Handler: dottest.Answer("192.0.2.73"),
	})
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{
			frozen.upstream("frozen"), killed.upstream("killed"),
			{name: "steady", addr: steady.Addr(), caFile: p.caFile},
		},
		extra: chaosConfig,
	})
	w := &logWatch{d: d}

	run := startPerf(t, perf, d, perfLoad{
		// More names than queries: none is asked twice, so a cache
		// could hide no upstream's trouble.
		names:    distinctNames(chaosQPS*int(chaosDuration.Seconds())*6/5, chaosZone),
		duration: chaosDuration,
		qps:      chaosQPS,
		timeout:  chaosQueryTimeout,
		perQuery: true,
	})
	start := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%5.1fs  %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	// phases are the log indexes where each part of the run starts.
	phases := []int{0}
	mark := func(name string) int {
		w.update()
		phases = append(phases, len(w.entries))
		step("%s", name)
		return len(w.entries)
	}

	time.Sleep(chaosWarmup)
	from := mark("SIGSTOP frozen")
	frozen.signal(syscall.SIGSTOP)
	down := w.wait(t, chaosEventWait, from, "upstream down", "upstream", "frozen")
	step("frozen marked down (%s)", w.entries[down].get("reason"))
	time.Sleep(chaosHold)
	frozen.signal(syscall.SIGCONT)
	step("SIGCONT frozen")
	frozenUp := w.wait(t, chaosEventWait, down+1, "upstream up", "upstream", "frozen")
	phases = append(phases, frozenUp)
	step("frozen marked up")

	from = mark("SIGKILL killed")
	killed.kill()
	down = w.wait(t, chaosEventWait, from, "upstream down", "upstream", "killed")
	step("killed marked down (%s)", w.entries[down].get("reason"))
	time.Sleep(chaosHold)
	killed.restart()
	step("killed restarted")
	killedUp := w.wait(t, chaosEventWait, down+1, "upstream up", "upstream", "killed")
	phases = append(phases, killedUp)
	step("killed marked up")

	res := run.wait(t)
	step("dnsperf done")
	w.update()
	phases = append(phases, len(w.entries))

	t.Logf("dnsperf: %d sent, %d completed, %d lost, response codes %v, %.0f queries/s",
		res.sent, res.completed, res.lost, res.rcodes, res.qps)
	t.Logf("latency of the chaos run, as dnsperf saw it (%s): %v", binaryKind(), summarize(res.latencies))
	t.Logf("answers by upstream, and latency, in each phase:\n%s", phaseTable(w, phases))

	if res.sent < chaosMinQueries {
		t.Errorf("dnsperf sent %d queries, want at least %d", res.sent, chaosMinQueries)
	}
	if res.completed != res.sent || res.lost != 0 || res.timedOut != 0 {
		t.Errorf("%d of %d queries completed, %d lost (%d timed out): want every one answered",
			res.completed, res.sent, res.lost, res.timedOut)
	}
	if res.rcodes["NOERROR"] != res.sent || len(res.rcodes) != 1 {
		t.Errorf("response codes %v, want NOERROR for all %d queries", res.rcodes, res.sent)
	}
	if len(res.latencies) != res.completed {
		t.Errorf("%d per-query latencies for %d answers", len(res.latencies), res.completed)
	}
	// Traffic back on each after its recovery: answers, not just sends.
	for _, c := range []struct {
		name string
		up   int
	}{{"frozen", frozenUp}, {"killed", killedUp}} {
		if n := w.count(c.up, chaosZone, "answer received", "upstream", c.name); n == 0 {
			t.Errorf("upstream %s answered no query after it was marked up again", c.name)
		}
	}
	if t.Failed() {
		t.Logf("dnsperf output (last lines):\n%s", lastLines(res.out, 40))
	}
}

// phaseTable tabulates, for each phase of the chaos run (log indexes
// phases[i] to phases[i+1]), how many queries each upstream answered and
// the latency of the answers dotproxy returned, as dotproxy measured it
// (from reading the query to writing the answer).
func phaseTable(w *logWatch, phases []int) string {
	names := []string{
		"warm-up", "frozen stopped", "frozen back up", "killed dead", "killed back up",
	}
	upstreams := []string{"frozen", "killed", "steady"}
	var b strings.Builder
	fmt.Fprintf(&b, "%-15s %7s %7s %7s   %s\n", "phase", "frozen", "killed", "steady", "latency inside dotproxy")
	for i := 0; i+1 < len(phases) && i < len(names); i++ {
		answers := map[string]int{}
		var lat []time.Duration
		for _, e := range w.entries[phases[i]:phases[i+1]] {
			if !strings.HasSuffix(e.get("qname"), chaosZone) {
				continue
			}
			switch e.get("msg") {
			case "answer received":
				answers[e.get("upstream")]++
			case "answer returned":
				if ns, ok := e["dur"].(float64); ok {
					lat = append(lat, time.Duration(ns))
				}
			}
		}
		fmt.Fprintf(&b, "%-15s", names[i])
		for _, u := range upstreams {
			fmt.Fprintf(&b, " %7d", answers[u])
		}
		fmt.Fprintf(&b, "   %v\n", summarize(lat))
	}
	return b.String()
}

// binaryKind says which build of dotproxy the tests run, for figures the
// race detector slows down.
func binaryKind() string {
	if raceEnabled {
		return "binary built with -race"
	}
	return "binary built without -race"
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
