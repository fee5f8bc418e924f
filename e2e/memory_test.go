package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// memConfig makes stuck upstreams visible within seconds: quick health
// checks, and queries that give up after query_timeout.
const memConfig = `timeout: 1s
query_timeout: 3s
health: {interval: 200ms, down_interval: 200ms, timeout: 500ms, fall: 2, rise: 1}
`

const (
	memZone = "mem.test."
	// memNames is more names than a saturation run asks on this machine,
	// so that every query misses any cache.
	memNames = 300_000
	// memClients and memOutstanding saturate dotproxy: dnsperf keeps
	// memOutstanding queries in flight from memClients sockets.
	memClients     = 20
	memOutstanding = 200
	memLoad        = 5 * time.Second
	// memStuckLoad is the load while every upstream is stuck; with
	// dnsperf giving each query up after memStuckTimeout, and dotproxy
	// after its query_timeout (3s), what dotproxy holds reaches its
	// ceiling after 3 s and must stay there.
	memStuckLoad    = 6 * time.Second
	memStuckTimeout = time.Second
	// memQueryTimeout is memConfig's query_timeout: after it, nothing of
	// a stuck query may remain.
	memQueryTimeout = 3 * time.Second
	// memMaxSamples bounds the samples taken while stuck, one a second.
	memMaxSamples = 20
	// schedWait bounds the wait for the runtime's next scheduler trace,
	// printed every second.
	schedWait = 10 * time.Second
)

// Generous bounds, to catch a leak, not to hold the targets of issue 3
// (under 30 MB idle, 100 MB at saturation), which the benchmarks check:
// the machine is shared, and what a test here sees varies.
const (
	maxRSSKB = 200 << 10
	// maxThreads: the Go runtime runs about GOMAXPROCS threads plus those
	// blocked in system calls; network I/O blocks none.
	maxThreads = 100
	// goroutineSlack is how many more goroutines than at idle may remain
	// once stuck queries have timed out: connections, probes.
	goroutineSlack = 50
	// goroutinesPerQuery bounds the goroutines one stuck query may
	// hold: its handler, its attempts on each upstream, their timers.
	goroutinesPerQuery = 8
)

// memSetup starts two Unbounds answering every name under memZone.
func memSetup(t *testing.T) []*unbound {
	t.Helper()
	p := newPKI(t)
	return []*unbound{
		startUnbound(t, p, "127.0.0.81", redirectZone(memZone, netip.MustParseAddr("192.0.2.81"))...),
		startUnbound(t, p, "127.0.0.82", redirectZone(memZone, netip.MustParseAddr("192.0.2.82"))...),
	}
}

// memProxy starts the binary built without -race, at log level info,
// forwarding to ubs, with more environment variables env.
func memProxy(t *testing.T, ubs []*unbound, env ...string) *dotproxy {
	t.Helper()
	var ups []upstreamConf
	for i, ub := range ubs {
		ups = append(ups, ub.upstream(fmt.Sprint("unbound", i+1)))
	}
	return startDotproxy(t, proxyConfig{
		upstreams: ups, extra: memConfig, bin: plainBin(t), logLevel: "info", env: env,
	})
}

// answered waits, at most timeout, until d answers a name of memZone with
// NOERROR.
func (d *dotproxy) answered(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		r, err := d.query("udp", fmt.Sprintf("ready%d.%s", i, memZone), dns.TypeA)
		if err == nil && r.Rcode == dns.RcodeSuccess {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no NOERROR answer within %v (last: %v, %v)", timeout, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMemoryIdleAndSaturated reports the resident memory of the binary
// built without -race at idle (started, its upstream connections open)
// and after five seconds of dnsperf at the highest rate it can drive with
// cache-miss names, and checks that both stay under a generous bound.
func TestMemoryIdleAndSaturated(t *testing.T) {
	perf := tool(t, "dnsperf", "dnsperf")
	d := memProxy(t, memSetup(t))
	d.answered(t, healthWait)
	idle := d.proc.status(t)
	t.Logf("idle: %v", idle)

	res := runPerf(t, perf, d, perfLoad{
		names:       distinctNames(memNames, memZone),
		duration:    memLoad,
		clients:     memClients,
		outstanding: memOutstanding,
		timeout:     5 * time.Second,
	})
	sat := d.proc.status(t)
	t.Logf("saturation: %d queries sent, %d completed, %d lost, response codes %v, %.0f queries/s",
		res.sent, res.completed, res.lost, res.rcodes, res.qps)
	t.Logf("after saturation: %v", sat)
	if res.sent > memNames {
		t.Logf("dnsperf sent %d queries, more than the %d names: some may have been answered from a cache", res.sent, memNames)
	}

	if res.rcodes["NOERROR"] == 0 {
		t.Errorf("no query answered NOERROR under load: response codes %v", res.rcodes)
	}
	for _, s := range []procStatus{idle, sat} {
		if s.peakKB > maxRSSKB || s.threads > maxThreads {
			t.Errorf("%v: want RSS under %.0f MB and at most %d threads", s, mb(maxRSSKB), maxThreads)
		}
	}
}

// TestMemoryStuckUpstreams freezes every upstream (SIGSTOP: connections
// open, nothing answered) while dnsperf keeps queries coming, and counts
// dotproxy's goroutines (from the runtime's scheduler trace), threads and
// resident memory each second. What it holds must stay bounded while
// the upstreams are stuck, and fall back to what it was at idle once the
// stuck queries have timed out.
func TestMemoryStuckUpstreams(t *testing.T) {
	perf := tool(t, "dnsperf", "dnsperf")
	ubs := memSetup(t)
	d := memProxy(t, ubs, schedTraceEnv)
	d.answered(t, healthWait)
	idleG := d.proc.goroutines(t, schedWait)
	idle := d.proc.status(t)
	t.Logf("idle: %d goroutines, %v", idleG, idle)

	for _, ub := range ubs {
		ub.signal(syscall.SIGSTOP)
	}
	run := startPerf(t, perf, d, perfLoad{
		names:       distinctNames(memNames, memZone),
		duration:    memStuckLoad,
		clients:     memClients,
		outstanding: memOutstanding,
		timeout:     memStuckTimeout,
	})
	start := time.Now()
	var samples []string
	maxG, peak := 0, procStatus{}
	// Each sample waits for the runtime's next trace, about a second.
	for range memMaxSamples {
		g := d.proc.goroutines(t, schedWait)
		s := d.proc.status(t)
		maxG, peak.threads = max(maxG, g), max(peak.threads, s.threads)
		peak.rssKB, peak.peakKB = max(peak.rssKB, s.rssKB), max(peak.peakKB, s.peakKB)
		samples = append(samples, fmt.Sprintf("%4.1fs  %5d goroutines  %3d threads  RSS %5.1f MB",
			time.Since(start).Seconds(), g, s.threads, mb(s.rssKB)))
		if run.finished() {
			break
		}
	}
	res := run.wait(t)
	t.Logf("stuck upstreams: %d queries sent, %d completed, %d lost, response codes %v",
		res.sent, res.completed, res.lost, res.rcodes)
	t.Logf("while stuck, each second:\n%s", strings.Join(samples, "\n"))

	for _, ub := range ubs {
		ub.signal(syscall.SIGCONT)
	}
	d.answered(t, healthWait)
	// Within query_timeout of the load's end, every query dotproxy held
	// has timed out, and what it held with it must be gone.
	var afterG int
	drain := time.Now().Add(memQueryTimeout + schedWait)
	for afterG = d.proc.goroutines(t, schedWait); afterG > idleG+goroutineSlack && time.Now().Before(drain); {
		afterG = d.proc.goroutines(t, schedWait)
	}
	after := d.proc.status(t)
	t.Logf("recovered, %.1fs after the load: %d goroutines, %v",
		time.Since(start).Seconds()-memStuckLoad.Seconds(), afterG, after)

	if len(samples) == 0 {
		t.Fatalf("no sample taken while the upstreams were stuck")
	}
	if peak.peakKB > maxRSSKB || peak.threads > maxThreads {
		t.Errorf("while stuck: peak RSS %.1f MB, %d threads; want under %.0f MB and at most %d threads",
			mb(peak.peakKB), peak.threads, mb(maxRSSKB), maxThreads)
	}
	// What dotproxy can hold: dnsperf keeps at most memOutstanding
	// queries in flight and gives each up after memStuckTimeout, dotproxy
	// after memQueryTimeout.
	held := memOutstanding * int(memQueryTimeout/memStuckTimeout)
	if maxG > idleG+goroutinesPerQuery*held {
		t.Errorf("%d goroutines while stuck, %d at idle: want at most %d per query held, %d queries",
			maxG, idleG, goroutinesPerQuery, held)
	}
	if afterG > idleG+goroutineSlack {
		t.Errorf("%d goroutines once the stuck queries timed out, %d at idle: want at most %d more",
			afterG, idleG, goroutineSlack)
	}
}
