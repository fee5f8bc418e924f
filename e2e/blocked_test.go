package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

const (
	// settledQueries is how many queries in a row must go to the DoH
	// upstream alone, with no attempt at the blocked one, for dotproxy to
	// have settled on DoH.
	settledQueries = 10
	// settleMax is the "within the first few queries": at most
	// this many may try the blocked upstream first. A query stops doing so
	// once dotproxy has seen that upstream fail (its first health probe
	// times out), which at dig's pace is a few dozen queries at most.
	settleMax = 50
	// burstMax bounds the queries of the blocked-port test.
	burstMax = 300
)

// burstName is the i-th name of the blocked-port test, and burstIP its
// address in Unbound's local data.
func burstName(i int) string { return fmt.Sprintf("burst%d.example.com.", i) }
func burstIP(i int) string   { return fmt.Sprintf("198.51.100.%d", i%250+1) }

// TestPort853Blocked is issue 13's case: port 853 blocked, the DoT
// upstream's TLS handshake never completing, and a DoH upstream (Unbound's)
// in the fallback tier. dotproxy runs on the shipped timeouts and health
// settings. Every dig query of a burst is answered, by the DoH upstream;
// the burst goes on until settledQueries in a row went to the DoH upstream
// alone, which must happen within the first settleMax queries and last;
// /metrics shows the DoH upstream answering and the blocked one never.
func TestPort853Blocked(t *testing.T) {
	tool(t, "dig", "dnsutils")
	p := newPKI(t)
	var data []string
	for i := range burstMax {
		data = append(data, fmt.Sprintf(`local-data: "%s 300 IN A %s"`, burstName(i), burstIP(i)))
	}
	ub := startUnboundDoH(t, p, "127.0.0.2", data...)
	doh := ub.upstream("doh")
	doh.fallback = true
	blocked := upstreamConf{name: "blocked", addr: dottest.StartTarpit(t, "127.0.0.5"), caFile: p.caFile}
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1", false))
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{blocked, doh},
		extra:     "admin: \"" + admin + "\"\n",
	})

	w := &logWatch{d: d}
	deadline := time.Now().Add(loopTimeout)
	tried := 0   // queries that made an attempt at the blocked upstream
	settled := 0 // queries in a row since the last that did
	n := 0
	for ; settled < settledQueries; n++ {
		if n == burstMax || time.Now().After(deadline) {
			t.Fatalf("%d queries in %v, %d of them tried the blocked upstream, the last %d did not", n, loopTimeout, tried, settled)
		}
		w.update()
		from := len(w.entries)
		args := []string{burstName(n), "A"}
		if network(n) == "tcp" {
			args = append(args, "+tcp")
		}
		a, out := d.dig(t, args...)
		if a.status != "NOERROR" || len(a.data("A")) != 1 || a.data("A")[0] != burstIP(n) {
			t.Fatalf("query %d, dig %q: status %s, A %q; want NOERROR, [%s]\n%s", n, args, a.status, a.data("A"), burstIP(n), out)
		}
		w.wait(t, logWait, from, "answer received", "upstream", "doh", "qname", burstName(n))
		if attempted(w.entries[from:], "blocked", burstName(n)) {
			tried, settled = tried+1, 0
		} else {
			settled++
		}
	}
	// An attempt logged after its query's answer shows here.
	w.update()
	for i := n - settledQueries; i < n; i++ {
		if attempted(w.entries, "blocked", burstName(i)) {
			t.Errorf("query %d (%s), once settled on DoH: an attempt at the blocked upstream", i, burstName(i))
		}
	}
	if tried > settleMax {
		t.Errorf("%d queries tried the blocked upstream, want at most %d", tried, settleMax)
	}
	t.Logf("%d queries, all answered over DoH; %d of them tried the blocked upstream first", n, tried)

	metrics := httpGet(t, "http://"+admin+"/metrics")
	for _, c := range []struct {
		series string
		ok     func(float64) bool
		want   string
	}{
		{`dotproxy_upstream_answers_total{upstream="doh"}`, func(v float64) bool { return v >= float64(n) }, fmt.Sprintf("≥ %d", n)},
		{`dotproxy_upstream_answers_total{upstream="blocked"}`, func(v float64) bool { return v == 0 }, "0"},
		{`dotproxy_upstream_up{upstream="doh"}`, func(v float64) bool { return v == 1 }, "1"},
	} {
		v, ok := metricValue(metrics, c.series)
		if !ok || !c.ok(v) {
			t.Errorf("/metrics: %s is %v (present %v), want %s", c.series, v, ok, c.want)
		}
	}
	for name, transport := range map[string]string{"doh": "https", "blocked": "tls"} {
		info := metricLine(metrics, "dotproxy_upstream_info{", `upstream="`+name+`"`)
		if !strings.Contains(info, `transport="`+transport+`"`) {
			t.Errorf("/metrics: upstream %s's info is %q, want transport=%q", name, info, transport)
		}
	}
}

// attempted reports whether any of entries is about upstream and qname:
// a query sent to it, a hedge or a failover away from it.
func attempted(entries []logEntry, upstream, qname string) bool {
	for _, e := range entries {
		if e.get("upstream") == upstream && e.get("qname") == qname {
			return true
		}
	}
	return false
}

// metricValue returns the value of one series, written as in the
// Prometheus text format (`name{label="value"}`), from a /metrics page.
func metricValue(page, series string) (float64, bool) {
	rest, ok := strings.CutPrefix(metricLine(page, series+" ", ""), series+" ")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	return v, err == nil
}

// metricLine returns the first line of a /metrics page that starts with
// prefix and holds label (a series' labels come sorted by name), "" if
// none does.
func metricLine(page, prefix, label string) string {
	for line := range strings.Lines(page) {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, label) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
