package upstream

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
)

// Policy orders the members for one query: the first is tried first,
// the rest are the failover and hedging order. Every policy puts healthy
// members first, those with recent failures next, and those the health
// checker marked down last (still tried, best first, when nothing else is
// left). Order returns a new slice and leaves ms as it is.
type Policy interface {
	Order(ms []Member) []Member
}

// Policy names, as written in the config file's policy key.
const (
	PolicyFastest    = "fastest"
	PolicyRoundRobin = "round_robin"
	PolicyRandom     = "random"
	PolicyOrdered    = "ordered"
)

// NewPolicy returns the policy of the given name.
func NewPolicy(name string) (Policy, error) {
	switch name {
	case PolicyFastest, "":
		return fastest{}, nil
	case PolicyRoundRobin:
		return &roundRobin{}, nil
	case PolicyRandom:
		return random{}, nil
	case PolicyOrdered:
		return ordered{}, nil
	}
	return nil, fmt.Errorf("unknown policy %q", name)
}

// tier ranks a member's standing: lower is better.
func (st Standing) tier() int {
	switch {
	case !st.Healthy:
		return 2
	case st.Failing:
		return 1
	}
	return 0
}

// tier is m's tier now.
func tier(m Member) int { return m.Standing(time.Now()).tier() }

// byTier sorts a copy of ms stably by tier, keeping the given order
// within each tier.
func byTier(ms []Member) []Member {
	type tiered struct {
		m    Member
		tier int
	}
	ts := make([]tiered, len(ms))
	for i, m := range ms {
		ts[i] = tiered{m, tier(m)}
	}
	slices.SortStableFunc(ts, func(a, b tiered) int { return a.tier - b.tier })
	out := make([]Member, len(ts))
	for i, t := range ts {
		out[i] = t.m
	}
	return out
}

type ordered struct{}

func (ordered) Order(ms []Member) []Member { return byTier(ms) }

type random struct{}

func (random) Order(ms []Member) []Member {
	out := slices.Clone(ms)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return byTier(out)
}

// roundRobin takes turns within each tier. Rotating before sorting by
// tier would hand a skipped upstream's turns to the one after it, which
// would then carry twice the others' share.
type roundRobin struct{ next atomic.Uint32 }

func (r *roundRobin) Order(ms []Member) []Member {
	turn := int(r.next.Add(1) - 1)
	out := byTier(ms)
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && tier(out[j]) == tier(out[i]) {
			j++
		}
		group := out[i:j]
		k := turn % len(group)
		copy(group, append(slices.Clone(group[k:]), group[:k]...))
		i = j
	}
	return out
}

// fastest orders by decayed smoothed RTT; a member never measured sorts
// first so that it gets measured. It never leads with a slower member to
// measure it: the selector keeps the others' RTTs known by asking one
// beside the fastest now and then (see explorer), which costs no client
// any time.
type fastest struct{}

func (fastest) Order(ms []Member) []Member {
	type ranked struct {
		m     Member
		tier  int
		score time.Duration
	}
	now := time.Now()
	rs := make([]ranked, len(ms))
	for i, m := range ms {
		st := m.Standing(now)
		rs[i] = ranked{m, st.tier(), st.Score}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if d := a.tier - b.tier; d != 0 {
			return d
		}
		return cmp.Compare(a.score, b.score)
	})
	out := make([]Member, len(rs))
	for i, r := range rs {
		out[i] = r.m
	}
	return out
}
