package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestCacheHitsAtInfoLevel: with the cache on and the log at info (as
// users run it; hits are answered from the cached wire form, at any log
// level), cached names are answered while the only upstream
// is frozen, to dig over UDP and TCP, to kdig on one kept-open connection
// and to mdig pipelining; with the client's ID, flags and letter case, a
// TTL counting down from the record's, and TC for an answer that does not
// fit a client without EDNS.
func TestCacheHitsAtInfoLevel(t *testing.T) {
	tool(t, "dig", "dnsutils")
	kdig := tool(t, "kdig", "knot-dnsutils")
	mdig := tool(t, "mdig", "dnsutils")
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	d := startDotproxy(t, proxyConfig{upstreams: []upstreamConf{ub.upstream("unbound")}, cache: true, logLevel: "info"})
	server, port := "@"+d.addr.Addr().String(), fmt.Sprint(d.addr.Port())

	// Fill the cache while the upstream answers.
	d.dig(t, "example.com", "A")
	d.dig(t, "example.com", "A", "+dnssec", "+cd") // DO and CD make another key
	d.dig(t, bigName, "TXT", "+tcp")
	for _, name := range letters {
		d.dig(t, name, "A")
	}
	ub.signal(syscall.SIGSTOP)
	t.Cleanup(func() { ub.signal(syscall.SIGCONT) })

	for _, args := range [][]string{
		{"example.com", "A"},
		{"example.com", "A", "+tcp"},
		{"ExAmPlE.CoM", "A", "+nocookie"},
		{"example.com", "A", "+noedns", "+norecurse"},
		{"example.com", "A", "+dnssec", "+cd"},
	} {
		a, out := d.dig(t, args...)
		if a.status != "NOERROR" || !slices.Equal(a.data("A"), []string{exampleIP}) || a.ede != "" {
			t.Fatalf("dig %q from the cache: status %s, A %q, EDE %q\n%s", args, a.status, a.data("A"), a.ede, out)
		}
		// The packed answer's owner names point into the question, so
		// they come back in the client's spelling: the sign that the
		// hit was copied from the cached wire form.
		if want := args[0] + "."; a.records[0].name != want {
			t.Errorf("dig %q: answer owner %q, want the client's spelling %q", args, a.records[0].name, want)
		}
		ttl := ttlOf(t, out, a)
		if ttl < 1 || ttl > 300 {
			t.Errorf("dig %q: TTL %d, want 1..300", args, ttl)
		}
		rd := !slices.Contains(args, "+norecurse")
		if !a.hasFlag("qr") || !a.hasFlag("ra") || a.hasFlag("rd") != rd || a.hasFlag("cd") != slices.Contains(args, "+cd") {
			t.Errorf("dig %q: flags %v", args, a.flags)
		}
		if a.opt == slices.Contains(args, "+noedns") {
			t.Errorf("dig %q: OPT record %v", args, a.opt)
		}
	}

	// Too big for 512 octets: TC over UDP, the whole answer over TCP.
	a, out := d.dig(t, bigName, "TXT", "+noedns", "+ignore")
	if !a.hasFlag("tc") {
		t.Errorf("big answer without EDNS over UDP: no TC\n%s", out)
	}
	if a, out := d.dig(t, bigName, "TXT", "+tcp"); len(a.data("TXT")) != bigCount {
		t.Errorf("big answer over TCP: %d TXT records, want %d\n%s", len(a.data("TXT")), bigCount, out)
	}

	for _, c := range []struct {
		tool string
		args []string
	}{
		{kdig, []string{server, "-p", port, "+tcp", "+keepopen", "+timeout=10", "+retry=0"}},
		{mdig, []string{server, "-p", port, "+vc", "+tries=1", "+timeout=10"}},
	} {
		res := run(t, "", nil, c.tool, append(c.args, letters...)...)
		if res.code != 0 {
			t.Fatalf("%s: status %d\n%s%s", c.tool, res.code, res.stdout, res.stderr)
		}
		checkLetters(t, parseAnswers(res.stdout), res.stdout)
	}
}

// ttlOf returns the TTL of a's first answer record, from dig's output.
func ttlOf(t *testing.T, out string, a *answer) int {
	t.Helper()
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == a.records[0].name && f[3] == a.records[0].rtype {
			ttl, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("TTL in %q: %v", line, err)
			}
			return ttl
		}
	}
	t.Fatalf("no answer record in:\n%s", out)
	return 0
}
