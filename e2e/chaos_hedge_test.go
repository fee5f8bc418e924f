package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// hedgeConfig sends every query to "first" while it is up (ordered), with
// the default attempt timeout and hedge floor, and quick health checks.
const hedgeConfig = `policy: ordered
health: {interval: 200ms, down_interval: 200ms, timeout: 500ms, fall: 2, rise: 1}
`

const (
	// hedgeQPS over hedgeLoad is the load; first is frozen after
	// hedgeWarmup.
	hedgeQPS    = 100
	hedgeLoad   = 4 * time.Second
	hedgeWarmup = time.Second
	// minHedges is how many hedged queries the test needs to see a trend.
	minHedges = 5
	// hedgeNoise is what a busy machine may add to a timer.
	hedgeNoise = 250 * time.Millisecond
)

// TestChaosSilentUpstreamHedgeDelay freezes the upstream every query goes
// to first (policy ordered) under steady load, and checks the README's
// promise: an attempt that has not been answered within a few times the
// upstream's smoothed RTT (at least hedge_delay) is raced against the next
// upstream, "so a resolver that silently stops answering costs
// milliseconds, not the timeout". The hedge delay, measured in dotproxy's
// log from a query's arrival to its hedging, must not grow while the
// upstream is silent: none may exceed 4 times the first one after the
// freeze, or the first plus hedgeNoise, whichever is more.
func TestChaosSilentUpstreamHedgeDelay(t *testing.T) {
	perf := tool(t, "dnsperf", "dnsperf")
	p := newPKI(t)
	first := startUnbound(t, p, "127.0.0.74", redirectZone(chaosZone, netip.MustParseAddr("192.0.2.74"))...)
	second := dottest.Start(t, dottest.Options{Cert: p.leafCert(t), Addr: "127.0.0.75:0"})
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{first.upstream("first"), {name: "second", addr: second.Addr(), caFile: p.caFile}},
		extra:     hedgeConfig,
		// Timers measured: the race detector's slowness would blur them.
		bin: plainBin(t),
	})
	w := &logWatch{d: d}
	run := startPerf(t, perf, d, perfLoad{
		names:    distinctNames(hedgeQPS*int(hedgeLoad.Seconds())*2, chaosZone),
		duration: hedgeLoad,
		qps:      hedgeQPS,
		timeout:  chaosQueryTimeout,
	})
	time.Sleep(hedgeWarmup)
	w.update()
	from := len(w.entries)
	first.signal(syscall.SIGSTOP)
	res := run.wait(t)
	t.Logf("dnsperf: %d sent, %d completed, %d lost, response codes %v", res.sent, res.completed, res.lost, res.rcodes)

	delays := hedgeDelays(t, w, from, "first")
	var list []string
	for _, dl := range delays {
		list = append(list, dl.Round(time.Millisecond).String())
	}
	t.Logf("hedge delays of the queries sent first to the frozen upstream, in order: %s", strings.Join(list, " "))
	if len(delays) < minHedges {
		t.Fatalf("%d queries hedged away from the frozen upstream, want at least %d to compare", len(delays), minHedges)
	}
	limit := max(4*delays[0], delays[0]+hedgeNoise)
	if longest := slices.Max(delays); longest > limit {
		t.Errorf("hedge delays grew from %v to %v while the upstream was silent (want at most %v): "+
			"a silent resolver costs up to the attempt timeout, not milliseconds",
			delays[0].Round(time.Millisecond), longest.Round(time.Millisecond), limit.Round(time.Millisecond))
	}
}

// hedgeDelays returns, for each query hedged away from upstream after log
// index from, in order, the time from its arrival to its hedging.
func hedgeDelays(t *testing.T, w *logWatch, from int, upstream string) []time.Duration {
	t.Helper()
	w.update()
	when := func(e logEntry) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, e.get("time"))
		if err != nil {
			t.Fatalf("log line without a time: %v", e)
		}
		return ts
	}
	received := map[string]time.Time{}
	var delays []time.Duration
	for i, e := range w.entries {
		switch {
		case e.is("query received"):
			received[e.get("qname")] = when(e)
		case i >= from && e.is("slow upstream, hedging", "upstream", upstream):
			if at, ok := received[e.get("qname")]; ok {
				delays = append(delays, when(e).Sub(at))
			}
		}
	}
	return delays
}
