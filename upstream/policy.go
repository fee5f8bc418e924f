package upstream

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
)

// Policy orders the upstreams for one query: the first is tried first,
// the rest are the failover and hedging order. Every policy puts healthy
// upstreams first, those with recent failures next, and those the health
// checker marked down last (still tried, best first, when nothing else is
// left).
type Policy interface {
	Order(ups []*Upstream) []*Upstream
}

// Policy names, as written in the config file's policy key.
const (
	PolicyFastest    = "fastest"
	PolicyRoundRobin = "round_robin"
	PolicyRandom     = "random"
	PolicyOrdered    = "ordered"
)

// exploreShare is the share of queries fastest sends to an upstream other
// than the fastest, so every upstream's RTT stays known.
const exploreShare = 0.05

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

// tier ranks an upstream's state: lower is better.
func tier(u *Upstream) int {
	switch {
	case !u.Healthy():
		return 2
	case u.streak.Load() > 0:
		return 1
	}
	return 0
}

// byTier sorts a copy of ups stably by tier, keeping the given order
// within each tier.
func byTier(ups []*Upstream) []*Upstream {
	out := slices.Clone(ups)
	slices.SortStableFunc(out, func(a, b *Upstream) int { return tier(a) - tier(b) })
	return out
}

type ordered struct{}

func (ordered) Order(ups []*Upstream) []*Upstream { return byTier(ups) }

type random struct{}

func (random) Order(ups []*Upstream) []*Upstream {
	out := slices.Clone(ups)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return byTier(out)
}

// roundRobin takes turns within each tier. Rotating before sorting by
// tier would hand a skipped upstream's turns to the one after it, which
// would then carry twice the others' share.
type roundRobin struct{ next atomic.Uint32 }

func (r *roundRobin) Order(ups []*Upstream) []*Upstream {
	turn := int(r.next.Add(1) - 1)
	out := byTier(ups)
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

// fastest orders by decayed smoothed RTT; an upstream never measured
// sorts first so that it gets measured.
type fastest struct{}

func (fastest) Order(ups []*Upstream) []*Upstream {
	type ranked struct {
		u     *Upstream
		tier  int
		score time.Duration
	}
	now := time.Now()
	rs := make([]ranked, len(ups))
	for i, u := range ups {
		rs[i] = ranked{u, tier(u), u.rank.score(now)}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if d := a.tier - b.tier; d != 0 {
			return d
		}
		return cmp.Compare(a.score, b.score)
	})
	out := make([]*Upstream, len(rs))
	for i, r := range rs {
		out[i] = r.u
	}
	// Now and then, lead with another upstream of the best tier.
	best := 1
	for best < len(out) && tier(out[best]) == tier(out[0]) {
		best++
	}
	if best > 1 && rand.Float64() < exploreShare {
		i := 1 + rand.IntN(best-1)
		out[0], out[i] = out[i], out[0]
	}
	return out
}
