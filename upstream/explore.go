package upstream

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// exploreInterval is how long a healthy member may go without an RTT
// sample before fastest asks it a client's query beside the fastest
// member: often enough that a member that has become the fastest is found
// within seconds, rare enough that a slower one gets a small share of the
// queries, none of which waits on it.
const exploreInterval = time.Second

// explorer keeps fastest's view of the members that are not leading
// current. The old way, leading now and then with another member, made a
// client wait on a slow one; a duplicate beside the query to the fastest
// costs no client anything: whichever answers first answers the client,
// and the duplicate runs to its end on its own, so that its RTT is
// measured even when the fastest answered long before.
type explorer struct {
	// claims holds, per member, when it was last explored or sampled
	// (Unix nanoseconds): one query at a time claims an exploration.
	claims   map[Member]*atomic.Int64
	interval time.Duration // exploreInterval; shorter in tests
}

func newExplorer(ms []Member) *explorer {
	e := &explorer{claims: make(map[Member]*atomic.Int64, len(ms)), interval: exploreInterval}
	for _, m := range ms {
		e.claims[m] = new(atomic.Int64)
	}
	return e
}

// pick returns a member of cands[1:] to ask beside cands[0] at now, and
// claims it; nil when none is due: each is explored at most once per
// interval, and only while healthy and without an RTT sample for that
// long.
func (e *explorer) pick(cands []Member, now time.Time) Member {
	ns := now.UnixNano()
	for _, m := range cands[1:] {
		c := e.claims[m]
		if c == nil {
			continue
		}
		last := c.Load()
		if ns-last < int64(e.interval) {
			continue // the common case: one atomic load per member
		}
		st := m.Standing(now)
		if st.tier() != 0 {
			continue
		}
		if s := st.Sampled.UnixNano(); !st.Sampled.IsZero() && ns-s < int64(e.interval) {
			c.CompareAndSwap(last, s) // measured lately: due a while after that
			continue
		}
		if c.CompareAndSwap(last, ns) {
			return m
		}
	}
	return nil
}

// explore asks m a copy of the query q in a goroutine of its own, with
// the attempt timeout, and reports its outcome on out (buffered, so that
// the goroutine never waits on a query already decided).
func (s *Selector) explore(m Member, q *dns.Msg, out chan<- attempt) {
	q = q.Copy() // the caller owns q again once it returns, and this may run on
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.AttemptTimeout)
		defer cancel()
		r, err := m.Exchange(ctx, q)
		out <- attempt{m, r, err}
	}()
}
