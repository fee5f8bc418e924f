package upstream

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// noHedge is a hedge delay no test query comes near, for tests that count
// where queries go and must not see hedged extras.
const noHedge = 5 * time.Second

// TestSelectorPolicies sends sequential queries through a Selector over
// three servers and counts what each server saw.
func TestSelectorPolicies(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		n      int
		down   []int // upstreams marked down by the health checker
		check  func(t *testing.T, seen []int64)
	}{
		{name: "ordered uses the first", policy: PolicyOrdered, n: 20, check: want(20, 0, 0)},
		{name: "ordered skips a down upstream", policy: PolicyOrdered, n: 20, down: []int{0}, check: want(0, 20, 0)},
		{name: "down upstreams are still tried", policy: PolicyOrdered, n: 20, down: []int{0, 1, 2}, check: want(20, 0, 0)},
		{name: "round_robin spreads evenly", policy: PolicyRoundRobin, n: 30, check: want(10, 10, 10)},
		{name: "round_robin uses a down upstream last", policy: PolicyRoundRobin, n: 30, down: []int{1}, check: want(15, 0, 15)},
		{name: "random reaches all", policy: PolicyRandom, n: 60, check: func(t *testing.T, seen []int64) {
			for i, n := range seen {
				if n == 0 {
					t.Errorf("upstream %d never used: %v", i, seen)
				}
			}
		}},
		{name: "random uses a down upstream last", policy: PolicyRandom, n: 30, down: []int{2}, check: func(t *testing.T, seen []int64) {
			if seen[2] != 0 || seen[0]+seen[1] != 30 {
				t.Errorf("queries seen %v, want none on the down upstream", seen)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			var (
				srvs []*dottest.Server
				ups  []*Upstream
			)
			for range 3 {
				srv := startServer(t, ca, nil)
				srvs = append(srvs, srv)
				ups = append(ups, newUpstream(t, ca, srv, Options{}))
			}
			for _, i := range tt.down {
				ups[i].SetHealthy(false)
			}
			p, err := NewPolicy(tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			s := newSelector(t, SelectorOptions{Policy: p, HedgeDelay: noHedge}, ups...)
			for i := range tt.n {
				if _, err := resolve(s, ctxFor(t, testTimeout), query(indexName(i), dns.TypeA)); err != nil {
					t.Fatalf("query %d: %v", i, err)
				}
			}
			seen := make([]int64, len(srvs))
			for i, srv := range srvs {
				seen[i] = srv.Queries()
			}
			tt.check(t, seen)
		})
	}
}

func want(counts ...int64) func(*testing.T, []int64) {
	return func(t *testing.T, seen []int64) {
		t.Helper()
		for i := range counts {
			if seen[i] != counts[i] {
				t.Errorf("queries seen %v, want %v", seen, counts)
				return
			}
		}
	}
}

// TestFastestPrefersLowRTT: after both upstreams are measured, fastest
// sends most queries to the one that answers sooner.
func TestFastestPrefersLowRTT(t *testing.T) {
	const warmUp, n = 10, 200
	ca := dottest.NewCA(t)
	slow := startServer(t, ca, dottest.Delay(30*time.Millisecond, dottest.Answer("192.0.2.1")))
	fast := startServer(t, ca, dottest.Answer("192.0.2.2"))
	s := newSelector(t, SelectorOptions{Policy: fastest{}, HedgeDelay: noHedge},
		newUpstream(t, ca, slow, Options{}), newUpstream(t, ca, fast, Options{}))

	for i := range warmUp + n {
		if i == warmUp {
			if slow.Queries() == 0 || fast.Queries() == 0 {
				t.Fatalf("warm-up measured only one upstream: slow %d, fast %d", slow.Queries(), fast.Queries())
			}
		}
		if _, err := resolve(s, ctxFor(t, testTimeout), query(indexName(i), dns.TypeA)); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	// Counting the warm-up makes the bar only harder to clear.
	if got := fast.Queries(); got*100 < (warmUp+n)*80 {
		t.Errorf("fast upstream got %d of %d queries, want over 80%% (slow got %d)", got, warmUp+n, slow.Queries())
	}
}

// TestPolicyTiers: every policy puts healthy upstreams first, those with
// recent failures next, those marked down last; with one healthy member,
// and with more than an ordering ranks on its stack (rankedOnStack).
func TestPolicyTiers(t *testing.T) {
	mk := func(name string) *Upstream {
		u, err := New(Options{Name: name, Addr: netip.MustParseAddrPort("192.0.2.53:853"), TLSName: testTLSName})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, healthy := range []int{1, rankedOnStack + 1} {
		for _, name := range []string{PolicyOrdered, PolicyRoundRobin, PolicyRandom, PolicyFastest} {
			t.Run(fmt.Sprintf("%s, %d healthy", name, healthy), func(t *testing.T) {
				down, failing := mk("D"), mk("F")
				down.SetHealthy(false)
				failing.streak.Store(2)
				ms := []Member{down, failing}
				var want []byte // the healthy members' names, sorted
				for i := range healthy {
					ms = append(ms, mk(string(rune('a'+i))))
					want = append(want, byte('a'+i))
				}
				p, err := NewPolicy(name)
				if err != nil {
					t.Fatal(err)
				}
				for range 50 {
					got := names(p.Order(ms))
					first := []byte(got[:max(len(got)-2, 0)])
					slices.Sort(first)
					if len(got) != len(ms) || got[len(got)-2:] != "FD" || string(first) != string(want) {
						t.Fatalf("order %s, want %s in any order, then F (failing), then D (down)", got, want)
					}
				}
			})
		}
	}
}

func TestNewPolicy(t *testing.T) {
	for _, name := range []string{"", PolicyFastest, PolicyRoundRobin, PolicyRandom, PolicyOrdered} {
		if _, err := NewPolicy(name); err != nil {
			t.Errorf("NewPolicy(%q): %v", name, err)
		}
	}
	if _, err := NewPolicy("weighted"); err == nil {
		t.Error("NewPolicy accepted an unknown name")
	}
}

// TestOrderWithinTier checks each policy's own order among equals.
func TestOrderWithinTier(t *testing.T) {
	ups := make([]*Upstream, 3)
	for i := range ups {
		u, err := New(Options{Name: string(rune('a' + i)), Addr: netip.MustParseAddrPort("192.0.2.53:853"), TLSName: testTLSName})
		if err != nil {
			t.Fatal(err)
		}
		ups[i] = u
	}
	ms := members(ups)
	t.Run("ordered keeps the configured order", func(t *testing.T) {
		if got := names(ordered{}.Order(ms)); got != "abc" {
			t.Errorf("order %s, want abc", got)
		}
	})
	t.Run("round_robin rotates", func(t *testing.T) {
		rr := &roundRobin{}
		for _, w := range []string{"abc", "bca", "cab", "abc"} {
			if got := names(rr.Order(ms)); got != w {
				t.Errorf("order %s, want %s", got, w)
			}
		}
	})
	t.Run("fastest: unmeasured first, then by RTT, always", func(t *testing.T) {
		now := time.Now()
		ups[0].rank.observe(30*time.Millisecond, now)
		ups[1].rank.observe(10*time.Millisecond, now)
		// ups[2] is not measured yet.
		for range 1000 {
			if got := names(fastest{}.Order(ms)); got != "cba" {
				t.Fatalf("order %s, want cba: fastest never leads with a slower member", got)
			}
		}
	})
}

func names(ms []Member) string {
	var s string
	for _, m := range ms {
		s += m.Name()
	}
	return s
}
