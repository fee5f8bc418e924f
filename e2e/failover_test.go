package e2e

import (
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// whoName is answered differently by each Unbound of a failover test, so
// that an answer tells which upstream gave it.
const (
	whoName  = "who.example.com."
	firstIP  = "192.0.2.101"
	secondIP = "192.0.2.102"
)

const (
	// failoverConfig makes failover deterministic (ordered: "first" is
	// always tried first while it is up) and health checks quick.
	failoverConfig = `policy: ordered
timeout: 1s
query_timeout: 3s
hedge_delay: 100ms
health: {interval: 200ms, down_interval: 200ms, timeout: 500ms, fall: 2, rise: 1}
`
	// queryCount is how many queries must all be answered while an
	// upstream is gone.
	queryCount = 50
	// loopTimeout bounds a loop of queryCount queries; dotproxy answers
	// each within its query_timeout.
	loopTimeout = 60 * time.Second
	// healthWait bounds the wait for a health transition in the log.
	healthWait = 20 * time.Second
)

// failoverSetup starts two Unbounds, "first" and "second", and a dotproxy
// that prefers first, and waits until first has answered through it.
func failoverSetup(t *testing.T) (d *dotproxy, first *unbound) {
	t.Helper()
	p := newPKI(t)
	first = startUnbound(t, p, "127.0.0.2", `local-data: "`+whoName+` 300 IN A `+firstIP+`"`)
	second := startUnbound(t, p, "127.0.0.3", `local-data: "`+whoName+` 300 IN A `+secondIP+`"`)
	d = startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{first.upstream("first"), second.upstream("second")},
		extra:     failoverConfig,
	})
	d.waitAnswerFrom(t, firstIP)
	return d, first
}

// who asks for whoName, over UDP or TCP, and returns the address in the
// answer; anything but one A record with NOERROR fails t.
func (d *dotproxy) who(t *testing.T, network string) string {
	t.Helper()
	r, err := d.query(network, whoName, dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("%s over %s: want NOERROR and one A record, got\n%v", whoName, network, r)
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		t.Fatalf("%s over %s: want an A record, got %v", whoName, network, r.Answer[0])
	}
	return a.A.String()
}

// network alternates UDP and TCP over a loop's iterations.
func network(i int) string { return []string{"udp", "tcp"}[i%2] }

// allAnsweredBy sends queryCount queries one after another and checks
// that every one is answered, by the upstream that answers ip.
func (d *dotproxy) allAnsweredBy(t *testing.T, ip string) {
	t.Helper()
	deadline := time.Now().Add(loopTimeout)
	for i := range queryCount {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d queries done within %v", i, queryCount, loopTimeout)
		}
		if got := d.who(t, network(i)); got != ip {
			t.Fatalf("query %d over %s: answered %s, want %s", i, network(i), got, ip)
		}
	}
}

// waitAnswerFrom queries until the upstream that answers ip answers,
// within queryCount queries and loopTimeout.
func (d *dotproxy) waitAnswerFrom(t *testing.T, ip string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(loopTimeout)
	for i := 0; i < queryCount && time.Now().Before(deadline); i++ {
		a := d.who(t, network(i))
		if a == ip {
			return
		}
		got = append(got, a)
		time.Sleep(100 * time.Millisecond) // give the health checker time to act
	}
	t.Fatalf("no answer %s in %d queries: got %v", ip, len(got), got)
}

// TestFailoverKilledUpstream: with the preferred Unbound killed, every
// query is answered by the other; the dead one is marked down, and up
// again once restarted on its port, and then answers again.
func TestFailoverKilledUpstream(t *testing.T) {
	d, first := failoverSetup(t)

	from := len(d.log())
	first.kill()
	d.allAnsweredBy(t, secondIP)
	down := d.waitLog(healthWait, from, "upstream down", "upstream", "first")

	first.restart()
	d.waitLog(healthWait, down+1, "upstream up", "upstream", "first")
	d.waitAnswerFrom(t, firstIP)
}

// TestFailoverFrozenUpstream: a stopped Unbound keeps its connections and
// accepts new ones but answers nothing. Every query is still answered, by
// the other; the frozen one is marked down, and up again once continued.
func TestFailoverFrozenUpstream(t *testing.T) {
	d, first := failoverSetup(t)

	from := len(d.log())
	first.signal(syscall.SIGSTOP)
	d.allAnsweredBy(t, secondIP)
	down := d.waitLog(healthWait, from, "upstream down", "upstream", "first")

	first.signal(syscall.SIGCONT)
	d.waitLog(healthWait, down+1, "upstream up", "upstream", "first")
	d.waitAnswerFrom(t, firstIP)
}

// TestAllUpstreamsDead: when no upstream can answer, a client gets
// SERVFAIL, with an Extended DNS Error saying why if it sent EDNS: 23
// (network error) when nothing listens, 22 (no reachable authority) when
// the upstream is there but silent.
func TestAllUpstreamsDead(t *testing.T) {
	tool(t, "dig", "dnsutils")
	p := newPKI(t)
	const timeouts = "timeout: 500ms\nquery_timeout: 2s\n"

	t.Run("refused", func(t *testing.T) {
		var ups []upstreamConf
		for _, name := range []string{"dead1", "dead2"} {
			// Free a moment ago: nothing listens there.
			addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, "127.0.0.1", false))
			ups = append(ups, upstreamConf{name: name, addr: addr, caFile: p.caFile})
		}
		d := startDotproxy(t, proxyConfig{upstreams: ups, extra: timeouts})
		checkServfail(t, d, "23")
		d.waitLog(logWait, 0, "query failed on every upstream", "qname", "example.com.")
	})

	t.Run("silent", func(t *testing.T) {
		ub := startUnbound(t, p, "127.0.0.2")
		d := startDotproxy(t, proxyConfig{upstreams: []upstreamConf{ub.upstream("frozen")}, extra: timeouts})
		ub.signal(syscall.SIGSTOP)
		checkServfail(t, d, "22")
	})
}

// checkServfail checks that example.com gets SERVFAIL over UDP and TCP,
// with EDE code ede when the query had EDNS and without an OPT record when
// it had not.
func checkServfail(t *testing.T, d *dotproxy, ede string) {
	t.Helper()
	for _, args := range [][]string{{}, {"+tcp"}, {"+noedns"}} {
		a, out := d.dig(t, append(args, "example.com")...)
		wantOPT := !slices.Contains(args, "+noedns")
		wantEDE := ""
		if wantOPT {
			wantEDE = ede
		}
		if a.status != "SERVFAIL" || a.opt != wantOPT || a.ede != wantEDE {
			t.Errorf("dig %q: status %s, OPT %v, EDE %q; want SERVFAIL, OPT %v, EDE %q\n%s",
				args, a.status, a.opt, a.ede, wantOPT, wantEDE, out)
		}
	}
}
