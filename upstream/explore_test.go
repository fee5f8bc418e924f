package upstream

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
)

// fakeMember is a Member whose standing the test sets.
type fakeMember struct {
	name string
	mu   sync.Mutex
	st   Standing
}

func (f *fakeMember) Name() string { return f.name }
func (f *fakeMember) Exchange(context.Context, *dns.Msg) (*dns.Msg, error) {
	panic("not asked in this test")
}
func (f *fakeMember) FailedOver() {}
func (f *fakeMember) Standing(time.Time) Standing {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// TestExplorerPick: a member of the best tier is explored once per
// interval (a contender, close to the leader's score, ten times as
// often), by one query however many ask at once, and only when it has
// had no RTT sample for that long; a member down or failing is not.
func TestExplorerPick(t *testing.T) {
	now := time.Now()
	const ms = time.Millisecond
	best := &fakeMember{name: "best", st: Standing{Healthy: true, Score: 10 * ms, Sampled: now}}
	stale := &fakeMember{name: "stale", st: Standing{Healthy: true, Score: 100 * ms, Sampled: now.Add(-time.Minute)}}
	fresh := &fakeMember{name: "fresh", st: Standing{Healthy: true, Score: 100 * ms, Sampled: now.Add(-10 * ms)}}
	down := &fakeMember{name: "down", st: Standing{Score: 100 * ms, Sampled: now.Add(-time.Minute)}}
	failing := &fakeMember{name: "failing", st: Standing{Healthy: true, Failing: true, Score: 100 * ms, Sampled: now.Add(-time.Minute)}}
	cands := []Member{best, fresh, stale, failing, down}
	e := newExplorer(cands, nil, true)

	var picked sync.Map
	var n atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if m := e.pick(cands, now); m != nil {
				n.Add(1)
				picked.Store(m.Name(), true)
			}
		})
	}
	wg.Wait()
	if _, ok := picked.Load("stale"); n.Load() != 1 || !ok {
		t.Fatalf("%d picks at once (stale picked: %v), want stale, once", n.Load(), ok)
	}
	if m := e.pick(cands, now.Add(exploreInterval/2)); m != nil {
		t.Fatalf("picked %s again within the interval", m.Name())
	}
	// A sample since the last exploration puts the next one off.
	for _, m := range []*fakeMember{stale, fresh} {
		m.mu.Lock()
		m.st.Sampled = now.Add(exploreInterval - ms)
		m.mu.Unlock()
	}
	if m := e.pick(cands, now.Add(exploreInterval+ms)); m != nil {
		t.Fatalf("picked %s, measured a moment ago", m.Name())
	}
	if m := e.pick(cands, now.Add(3*exploreInterval)); m != stale && m != fresh {
		t.Fatalf("picked %v after the interval, want a healthy member", m)
	}

	// A contender is due after a tenth of the interval.
	contender := &fakeMember{name: "contender", st: Standing{Healthy: true, Score: 15 * ms, Sampled: now}}
	cands = []Member{best, contender}
	e = newExplorer(cands, nil, true)
	if m := e.pick(cands, now.Add(exploreInterval/closeFactor/2)); m != nil {
		t.Fatalf("picked %s before its short interval", m.Name())
	}
	if m := e.pick(cands, now.Add(exploreInterval/closeFactor+ms)); m != contender {
		t.Fatalf("picked %v after a tenth of the interval, want the contender", m)
	}
}

// TestExplorationCostsNoWait: with fastest, once each member is
// measured, the slow member never leads: it is asked about once per
// exploration interval, beside the fast one (so at most those answers
// can come from it, when it beats the fast one), and its RTT is
// measured each time, though the fast one answers first.
func TestExplorationCostsNoWait(t *testing.T) {
	ca := dottest.NewCA(t)
	// Slow enough that the fast one, stalled by a loaded machine, still
	// answers first.
	slow := startServer(t, ca, dottest.Delay(400*time.Millisecond, dottest.Answer("192.0.2.1")))
	fast := startServer(t, ca, dottest.Answer("192.0.2.2"))
	ups := []*Upstream{newUpstream(t, ca, slow, Options{Name: "slow"}), newUpstream(t, ca, fast, Options{Name: "fast"})}
	s := newSelector(t, SelectorOptions{Policy: fastest{}, HedgeDelay: noHedge}, ups...)
	const interval = 100 * time.Millisecond
	s.explorer.interval = interval

	ask := func(i int) string {
		req := resolver.NewRequest(query(indexName(i), dns.TypeA))
		if _, err := s.Resolve(ctxFor(t, testTimeout), req); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		return req.Info.Upstream
	}
	// Until both are measured, fastest leads with the unmeasured one.
	i := 0
	for ; ups[0].SRTT() == 0 || ups[1].SRTT() == 0; i++ {
		if i > 20 {
			t.Fatal("both members not measured after 20 queries")
		}
		ask(i)
	}
	before, sampled := slow.Queries(), ups[0].Standing(time.Now()).Sampled
	start := time.Now()
	var fromSlow int64
	for ; time.Since(start) < 6*interval; i++ {
		if ask(i) == "slow" {
			fromSlow++
		}
	}
	elapsed := time.Since(start)
	explored := slow.Queries() - before
	if max := int64(elapsed/interval) + 1; explored < 1 || explored > max || fromSlow > explored {
		t.Errorf("slow member asked %d times in %v, want 1..%d (once per %v); %d answers from it",
			explored, elapsed, max, interval, fromSlow)
	}
	waitFor(t, "the exploration's RTT sample", func() bool {
		return ups[0].Standing(time.Now()).Sampled.After(sampled)
	})
	if rtt := ups[0].SRTT(); rtt < 300*time.Millisecond {
		t.Errorf("slow member's RTT %v: the exploration was not measured to its end", rtt)
	}
}
