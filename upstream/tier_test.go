package upstream

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// answering is a fakeMember that answers every query it is asked, or
// fails with err, counting the queries.
type answering struct {
	fakeMember
	err   error
	asked atomic.Int32
}

func (a *answering) Exchange(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	a.asked.Add(1)
	if a.err != nil {
		return nil, a.err
	}
	r := new(dns.Msg)
	r.SetReply(q)
	return r, nil
}

var (
	usableSt  = Standing{Healthy: true}
	failingSt = Standing{Healthy: true, Failing: true}
	downSt    = Standing{}
)

func newAnswering(name string, st Standing) *answering {
	return &answering{fakeMember: fakeMember{name: name, st: st}}
}

// TestTierOrder: with fallbacks, every policy puts the usable members
// first, the fallbacks next (usable, failing, down), then the members
// failing, then those marked down; within a tier, its own order.
func TestTierOrder(t *testing.T) {
	type member struct {
		name     string
		st       Standing
		fallback bool
	}
	for _, tc := range []struct {
		name    string
		members []member
		want    [][]string // tiers in order; within one, any order
	}{
		{"all usable: the fallbacks last",
			[]member{{"f1", usableSt, true}, {"p1", usableSt, false}, {"f2", usableSt, true}, {"p2", usableSt, false}},
			[][]string{{"p1", "p2"}, {"f1", "f2"}}},
		{"a failing member behind the fallbacks",
			[]member{{"p1", failingSt, false}, {"p2", usableSt, false}, {"f1", usableSt, true}},
			[][]string{{"p2"}, {"f1"}, {"p1"}}},
		{"no usable member: the fallbacks lead, failing before down",
			[]member{{"p1", downSt, false}, {"p2", failingSt, false}, {"f1", usableSt, true}, {"f2", usableSt, true}},
			[][]string{{"f1", "f2"}, {"p2"}, {"p1"}}},
		{"fallbacks ranked by their own health",
			[]member{{"f1", downSt, true}, {"f2", failingSt, true}, {"f3", usableSt, true}, {"p1", usableSt, false}},
			[][]string{{"p1"}, {"f3"}, {"f2"}, {"f1"}}},
		{"a fallback down still before a member failing",
			[]member{{"p1", failingSt, false}, {"f1", downSt, true}},
			[][]string{{"f1"}, {"p1"}}},
		{"only fallbacks: their own health",
			[]member{{"f1", failingSt, true}, {"f2", usableSt, true}},
			[][]string{{"f2"}, {"f1"}}},
		{"no fallbacks: healthy, failing, down",
			[]member{{"p1", downSt, false}, {"p2", failingSt, false}, {"p3", usableSt, false}},
			[][]string{{"p3"}, {"p2"}, {"p1"}}},
	} {
		for _, policy := range []string{PolicyOrdered, PolicyRoundRobin, PolicyRandom, PolicyFastest} {
			t.Run(tc.name+"/"+policy, func(t *testing.T) {
				p, err := NewPolicy(policy)
				if err != nil {
					t.Fatal(err)
				}
				var members, fallbacks []Member
				for _, m := range tc.members {
					f := newAnswering(m.name, m.st)
					if m.fallback {
						fallbacks = append(fallbacks, f)
					} else {
						members = append(members, f)
					}
				}
				s, err := NewSelector(SelectorOptions{Policy: p, Fallbacks: fallbacks}, members...)
				if err != nil {
					t.Fatal(err)
				}
				for range 20 {
					got := s.order(s.members)
					if !inTiers(got, tc.want) {
						t.Fatalf("order %v, want tiers %v", nameList(got), tc.want)
					}
				}
			})
		}
	}
}

// inTiers reports whether ms holds exactly the names of tiers, tier by
// tier.
func inTiers(ms []Member, tiers [][]string) bool {
	i := 0
	for _, tier := range tiers {
		if i+len(tier) > len(ms) {
			return false
		}
		got := nameList(ms[i : i+len(tier)])
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tier))
		if !slices.Equal(got, want) {
			return false
		}
		i += len(tier)
	}
	return i == len(ms)
}

func nameList(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name()
	}
	return out
}

// TestTierRoundRobinFair: the fallbacks do not skew round_robin's turns
// among the usable members, however they interleave in the list.
func TestTierRoundRobinFair(t *testing.T) {
	p1, p2, p3 := newAnswering("p1", usableSt), newAnswering("p2", usableSt), newAnswering("p3", usableSt)
	f1, f2 := newAnswering("f1", usableSt), newAnswering("f2", usableSt)
	s, err := NewSelector(SelectorOptions{Policy: &roundRobin{}, Fallbacks: []Member{f1, f2}}, p1, p2, p3)
	if err != nil {
		t.Fatal(err)
	}
	leads := map[string]int{}
	const rounds = 30
	for range 3 * rounds {
		leads[s.order(s.members)[0].Name()]++
	}
	for _, n := range []string{"p1", "p2", "p3"} {
		if leads[n] != rounds {
			t.Errorf("leads %v, want %d each for p1, p2, p3", leads, rounds)
			break
		}
	}
}

// TestExplorerSparesFallbacks: while a member that is not a fallback
// leads, the explorer sends no fallback a copy, however long unmeasured;
// once a fallback leads (no other usable), the other fallbacks are
// explored as any member is.
func TestExplorerSparesFallbacks(t *testing.T) {
	now := time.Now()
	const ms = time.Millisecond
	stale := now.Add(-time.Hour)
	lead := &fakeMember{name: "lead", st: Standing{Healthy: true, Score: 10 * ms, Sampled: now}}
	f1 := &fakeMember{name: "f1", st: Standing{Healthy: true, Score: 12 * ms, Sampled: stale}}
	f2 := &fakeMember{name: "f2", st: Standing{Healthy: true, Score: 11 * ms, Sampled: stale}}
	other := &fakeMember{name: "other", st: Standing{Healthy: true, Score: 100 * ms, Sampled: stale}}
	fallback := map[Member]bool{f1: true, f2: true}
	for _, tc := range []struct {
		name  string
		cands []Member
		want  []string // the picks, in turn, until nil
	}{
		{"a member leads: only members", []Member{lead, f2, f1, other}, []string{"other"}},
		{"only fallbacks behind it: none", []Member{lead, f2, f1}, nil},
		{"a fallback leads: the other fallbacks", []Member{f1, f2}, []string{"f2"}},
		{"a fallback leads: members and fallbacks", []Member{f2, other, f1}, []string{"other", "f1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newExplorer(tc.cands, fallback, true)
			var got []string
			for range len(tc.cands) {
				m := e.pick(tc.cands, now)
				if m == nil {
					break
				}
				got = append(got, m.Name())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("picks %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFallbackQueries: through a selector, a fallback answers only what
// the usable members cannot: never asked while one answers (fastest,
// exploring all the time), asked first once none is usable, and asked
// as the last resort when the usable ones fail the query. A primary
// failing behind it is sent copies (see TestExplorerRecovers).
func TestFallbackQueries(t *testing.T) {
	failed := errors.New("connection refused")
	for _, tc := range []struct {
		name         string
		primary      Standing
		primaryErr   error
		wantPrimary  int32 // queries the primary is asked; at most, with copies
		copies       bool  // the primary gets copies: at least one
		wantFallback int32
	}{
		{"usable primary answers", usableSt, nil, 10, false, 0},
		// Healthy but failing: it gets copies, to come back; each query
		// may claim one here, unless two read the same clock reading.
		{"primary failing: the fallback leads", failingSt, nil, 10, true, 10},
		{"primary down: the fallback leads", downSt, nil, 0, false, 10},
		{"usable primary fails: the fallback answers", usableSt, failed, 10, false, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := newAnswering("primary", tc.primary)
			primary.err = tc.primaryErr
			fb := newAnswering("fallback", usableSt)
			s, err := NewSelector(SelectorOptions{Policy: fastest{}, HedgeDelay: noHedge, AttemptTimeout: time.Second,
				Fallbacks: []Member{fb}}, primary)
			if err != nil {
				t.Fatal(err)
			}
			s.explorer.interval = time.Nanosecond // every member always due
			for i := range 10 {
				r, err := resolve(s, ctxFor(t, testTimeout), query(indexName(i), dns.TypeA))
				if err != nil || r.Rcode != dns.RcodeSuccess {
					t.Fatalf("query %d: %v, %v", i, r, err)
				}
			}
			if tc.copies {
				// Copies go in goroutines of their own (explore).
				waitFor(t, "a copy to the primary", func() bool { return primary.asked.Load() >= 1 })
			}
			p, f := primary.asked.Load(), fb.asked.Load()
			primaryOK := p == tc.wantPrimary || tc.copies && p >= 1 && p <= tc.wantPrimary
			if !primaryOK || f != tc.wantFallback {
				t.Errorf("primary asked %d, fallback %d; want %d, %d", p, f, tc.wantPrimary, tc.wantFallback)
			}
		})
	}
}

// TestResolveAmong: only the members allowed are asked, in the
// selector's order; none allowed is an error, not a query.
func TestResolveAmong(t *testing.T) {
	self := newAnswering("self", usableSt)
	other := newAnswering("other", failingSt)
	fb := newAnswering("fallback", usableSt)
	s, err := NewSelector(SelectorOptions{Policy: ordered{}, HedgeDelay: noHedge, AttemptTimeout: time.Second,
		Fallbacks: []Member{fb}}, self, other)
	if err != nil {
		t.Fatal(err)
	}
	s.explorer.interval = time.Hour // one copy to the failing member, the first time
	notSelf := func(m Member) bool { return m != self }
	for range 5 {
		if r, err := s.ResolveAmong(ctxFor(t, testTimeout), query("dns.example.", dns.TypeA), notSelf); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("ResolveAmong: %v, %v", r, err)
		}
	}
	// The copy goes in a goroutine of its own (explore), which may ask
	// after the query has its answer.
	waitFor(t, "the copy to the failing member", func() bool { return other.asked.Load() >= 1 })
	if self.asked.Load() != 0 || fb.asked.Load() != 5 || other.asked.Load() != 1 {
		t.Errorf("asked self %d, fallback %d, other %d; want 0, 5 (leading: the other is failing), 1 (a copy to bring it back)",
			self.asked.Load(), fb.asked.Load(), other.asked.Load())
	}
	if _, err := s.ResolveAmong(ctxFor(t, testTimeout), query("dns.example.", dns.TypeA),
		func(Member) bool { return false }); !errors.Is(err, ErrNoUpstream) {
		t.Errorf("none allowed: %v, want ErrNoUpstream", err)
	}
}
