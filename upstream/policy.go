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

// healthTiers is how many values Standing.tier takes.
const healthTiers = 3

// rankFunc places a member in a tier, lower first, from its standing.
// The policies order the tiers and only within each tier apply their
// own rule; Order ranks by health alone, a Selector with fallbacks by
// its own tiers (Selector.rank).
type rankFunc func(m Member, st Standing) int

// byHealth is Order's rank: Standing.tier.
func byHealth(_ Member, st Standing) int { return st.tier() }

// ranker is what every policy of this package is besides a Policy: an
// order under the caller's tiers. Taking the tiers as given, rather than
// sorting a policy's order afterwards, keeps round_robin fair within a
// tier that the selector's tiers split.
type ranker interface {
	orderBy(ms []Member, rank rankFunc) []Member
}

var (
	_ ranker = ordered{}
	_ ranker = random{}
	_ ranker = (*roundRobin)(nil)
	_ ranker = fastest{}
)

// ranked is a member with its tier for one ordering, and its score for
// fastest.
type ranked struct {
	m     Member
	tier  int
	score time.Duration
}

// rankedOnStack is how many members an ordering ranks in its own stack
// frame (rankBuf) before it takes memory from the heap: more than most
// configurations list, so that ordering a query's upstreams allocates
// only the order it returns.
const rankedOnStack = 8

// rankBuf is an ordering's room for its ranks.
type rankBuf [rankedOnStack]ranked

// rankAll ranks a copy of ms, in ms's order, at one instant, in buf when
// they fit.
func rankAll(buf *rankBuf, ms []Member, rank rankFunc) []ranked {
	now := time.Now()
	rs := buf[:0]
	if len(ms) > len(buf) {
		rs = make([]ranked, 0, len(ms))
	}
	rs = rs[:len(ms)]
	for i, m := range ms {
		st := m.Standing(now)
		rs[i] = ranked{m, rank(m, st), st.Score}
	}
	return rs
}

// membersOf is rs's members, in rs's order.
func membersOf(rs []ranked) []Member {
	out := make([]Member, len(rs))
	for i, r := range rs {
		out[i] = r.m
	}
	return out
}

// byTier sorts a copy of ms stably by tier, keeping the given order
// within each tier.
func byTier(buf *rankBuf, ms []Member, rank rankFunc) []ranked {
	rs := rankAll(buf, ms, rank)
	slices.SortStableFunc(rs, func(a, b ranked) int { return a.tier - b.tier })
	return rs
}

type ordered struct{}

func (p ordered) Order(ms []Member) []Member { return p.orderBy(ms, byHealth) }

func (ordered) orderBy(ms []Member, rank rankFunc) []Member {
	var buf rankBuf
	return membersOf(byTier(&buf, ms, rank))
}

type random struct{}

func (p random) Order(ms []Member) []Member { return p.orderBy(ms, byHealth) }

func (random) orderBy(ms []Member, rank rankFunc) []Member {
	out := slices.Clone(ms)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	var buf rankBuf
	return membersOf(byTier(&buf, out, rank))
}

// roundRobin takes turns within each tier. Rotating before sorting by
// tier would hand a skipped upstream's turns to the one after it, which
// would then carry twice the others' share.
type roundRobin struct{ next atomic.Uint32 }

func (r *roundRobin) Order(ms []Member) []Member { return r.orderBy(ms, byHealth) }

func (r *roundRobin) orderBy(ms []Member, rank rankFunc) []Member {
	turn := int(r.next.Add(1) - 1)
	var buf rankBuf
	rs := byTier(&buf, ms, rank)
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && rs[j].tier == rs[i].tier {
			j++
		}
		group := rs[i:j]
		k := turn % len(group)
		copy(group, append(slices.Clone(group[k:]), group[:k]...))
		i = j
	}
	return membersOf(rs)
}

// fastest orders by decayed smoothed RTT; a member never measured sorts
// first so that it gets measured. It never leads with a slower member to
// measure it: the selector keeps the others' RTTs known by asking one
// beside the fastest now and then (see explorer), which costs no client
// any time.
type fastest struct{}

func (p fastest) Order(ms []Member) []Member { return p.orderBy(ms, byHealth) }

func (fastest) orderBy(ms []Member, rank rankFunc) []Member {
	var buf rankBuf
	rs := rankAll(&buf, ms, rank)
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if d := a.tier - b.tier; d != 0 {
			return d
		}
		return cmp.Compare(a.score, b.score)
	})
	return membersOf(rs)
}
