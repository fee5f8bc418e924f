package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// perfSlack bounds how long dnsperf may run past its time limit and its
// query timeout before the test gives up on it: starting, and writing its
// report, on a busy machine.
const perfSlack = 20 * time.Second

// perfLoad is one dnsperf run against dotproxy.
type perfLoad struct {
	names       []string      // the query file: each name is asked for its A record
	duration    time.Duration // -l, whole seconds
	qps         int           // -Q; 0 sends as fast as answers allow
	clients     int           // -c; 0 is dnsperf's default, 1
	outstanding int           // -q; 0 is dnsperf's default, 100
	timeout     time.Duration // -t, whole seconds: a query unanswered this long is lost
	perQuery    bool          // -v: one line per query, for latencies
}

// perfResult is what dnsperf reported.
type perfResult struct {
	sent, completed, lost int
	rcodes                map[string]int // answers by response code
	qps                   float64
	latencies             []time.Duration // one per answer; only with perQuery
	timedOut              int             // "> T" lines; only with perQuery
	out                   string          // all it printed
}

// perfRun is a dnsperf run under way.
type perfRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	res    perfResult
	err    error
}

// startPerf starts dnsperf against d with load in the background. The run
// is killed when the test ends, if it has not finished by then.
func startPerf(t *testing.T, bin string, d *dotproxy, load perfLoad) *perfRun {
	t.Helper()
	file := filepath.Join(t.TempDir(), "queries.txt")
	var b strings.Builder
	for _, n := range load.names {
		fmt.Fprintf(&b, "%s A\n", n)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-s", d.addr.Addr().String(), "-p", fmt.Sprint(d.addr.Port()),
		"-d", file,
		"-l", fmt.Sprint(int(load.duration.Seconds())),
		"-t", fmt.Sprint(int(load.timeout.Seconds())),
	}
	if load.qps > 0 {
		args = append(args, "-Q", fmt.Sprint(load.qps))
	}
	if load.clients > 0 {
		args = append(args, "-c", fmt.Sprint(load.clients))
	}
	if load.outstanding > 0 {
		args = append(args, "-q", fmt.Sprint(load.outstanding))
	}
	if load.perQuery {
		args = append(args, "-v")
	}
	ctx, cancel := context.WithTimeout(context.Background(), load.duration+load.timeout+perfSlack)
	r := &perfRun{cancel: cancel, done: make(chan struct{})}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting dnsperf: %v", err)
	}
	go func() {
		defer close(r.done)
		err := cmd.Wait()
		switch {
		case ctx.Err() != nil:
			r.err = fmt.Errorf("dnsperf %q: no result within %v:\n%s", args, load.duration+load.timeout+perfSlack, &out)
		case err != nil:
			r.err = fmt.Errorf("dnsperf %q: %v:\n%s", args, err, &out)
		default:
			r.res, r.err = parsePerf(out.String())
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait waits for the run to end and returns what dnsperf reported; a run
// that failed or printed no statistics fails t.
func (r *perfRun) wait(t *testing.T) perfResult {
	t.Helper()
	<-r.done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.res
}

// finished reports whether the run has ended.
func (r *perfRun) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// runPerf runs dnsperf to completion.
func runPerf(t *testing.T, bin string, d *dotproxy, load perfLoad) perfResult {
	t.Helper()
	return startPerf(t, bin, d, load).wait(t)
}

var (
	perfCountRE  = regexp.MustCompile(`(?m)^\s*Queries (sent|completed|lost):\s+(\d+)`)
	perfRcodesRE = regexp.MustCompile(`(?m)^\s*Response codes:\s+(.*)$`)
	perfRcodeRE  = regexp.MustCompile(`([A-Z]+) (\d+) \(`)
	perfQPSRE    = regexp.MustCompile(`(?m)^\s*Queries per second:\s+([0-9.]+)`)
	// perfQueryRE is a -v line: "> NOERROR name A 0.000472", or "> T name
	// A" for a query that timed out.
	perfQueryRE = regexp.MustCompile(`(?m)^> (\S+) \S+ \S+(?: ([0-9.]+))?$`)
)

// parsePerf reads dnsperf's report:
//
//	Queries sent:         3600
//	Queries completed:    3600 (100.00%)
//	Queries lost:         0 (0.00%)
//
//	Response codes:       NOERROR 3590 (99.72%), SERVFAIL 10 (0.28%)
//	...
//	Queries per second:   299.985442
func parsePerf(out string) (perfResult, error) {
	res := perfResult{rcodes: map[string]int{}, out: out}
	counts := perfCountRE.FindAllStringSubmatch(out, -1)
	if len(counts) != 3 {
		return res, fmt.Errorf("dnsperf printed no statistics:\n%s", out)
	}
	for _, m := range counts {
		n, _ := strconv.Atoi(m[2])
		switch m[1] {
		case "sent":
			res.sent = n
		case "completed":
			res.completed = n
		case "lost":
			res.lost = n
		}
	}
	if m := perfRcodesRE.FindStringSubmatch(out); m != nil {
		for _, rc := range perfRcodeRE.FindAllStringSubmatch(m[1], -1) {
			res.rcodes[rc[1]], _ = strconv.Atoi(rc[2])
		}
	}
	if m := perfQPSRE.FindStringSubmatch(out); m != nil {
		res.qps, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range perfQueryRE.FindAllStringSubmatch(out, -1) {
		if m[1] == "T" {
			res.timedOut++
			continue
		}
		sec, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return res, fmt.Errorf("dnsperf per-query line %q: %v", m[0], err)
		}
		res.latencies = append(res.latencies, time.Duration(sec*float64(time.Second)))
	}
	return res, nil
}

// latencySummary is the spread of a run's latencies.
type latencySummary struct {
	n             int
	p50, p99, max time.Duration
}

func summarize(lat []time.Duration) latencySummary {
	if len(lat) == 0 {
		return latencySummary{}
	}
	s := slices.Sorted(slices.Values(lat))
	// Nearest rank: the smallest value with at least p% of them at or
	// below it.
	rank := func(p int) time.Duration { return s[(len(s)*p+99)/100-1] }
	return latencySummary{n: len(s), p50: rank(50), p99: rank(99), max: s[len(s)-1]}
}

func (l latencySummary) String() string {
	return fmt.Sprintf("%d answers: p50 %v, p99 %v, max %v", l.n,
		l.p50.Round(time.Microsecond), l.p99.Round(time.Microsecond), l.max.Round(time.Microsecond))
}

// distinctNames returns n names under zone, each different, so that no
// answer can come from a cache and every query reaches an upstream.
func distinctNames(n int, zone string) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("q%06d.%s", i, zone)
	}
	return names
}

// redirectZone is Unbound configuration answering every name under zone
// (zone itself included) with one A record for ip.
func redirectZone(zone string, ip netip.Addr) []string {
	return []string{
		fmt.Sprintf(`local-zone: "%s" redirect`, zone),
		fmt.Sprintf(`local-data: "%s 300 IN A %s"`, zone, ip),
	}
}
