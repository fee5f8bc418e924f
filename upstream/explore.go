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

// A member whose score is within closeScore times the leader's is a
// contender: one bad sample (a loaded moment) may be all that put it
// behind, so it is explored closeFactor times as often, and a spike
// does not hand the lead to a slower member for a whole interval.
const (
	closeScore  = 2
	closeFactor = 10
)

// explorer keeps fastest's view of the members that are not leading
// current. The old way, leading now and then with another member, made a
// client wait on a slow one; a duplicate beside the query to the fastest
// costs no client anything: whichever answers first answers the client,
// and the duplicate runs to its end on its own, so that its RTT is
// measured even when the fastest answered long before.
//
// With fallbacks it also brings a primary back, under every policy:
// while a fallback leads, a member that is not one, which the health
// checker calls healthy but whose real queries are failing, is sent a
// copy once per interval. Nothing else would ask it (the failing rank
// behind the fallbacks), so one lost query would hand the house to
// the fallbacks' providers until the next probe; one answer to the copy
// ends its streak and puts it back in front.
type explorer struct {
	// claims holds, per member, when it was last explored or sampled
	// (Unix nanoseconds): one query at a time claims an exploration.
	claims   map[Member]*atomic.Int64
	fallback map[Member]bool // the selector's fallbacks; nil when none
	measure  bool            // fastest: explore for RTTs, not only to recover
	interval time.Duration   // exploreInterval; shorter in tests
}

func newExplorer(ms []Member, fallback map[Member]bool, measure bool) *explorer {
	e := &explorer{claims: make(map[Member]*atomic.Int64, len(ms)), fallback: fallback,
		measure: measure, interval: exploreInterval}
	for _, m := range ms {
		e.claims[m] = new(atomic.Int64)
	}
	return e
}

// pick returns a member of cands[1:] to ask beside cands[0] at now, and
// claims it; nil when none is due. For fastest, a member is due when it
// is healthy and has had no RTT sample, nor an exploration, for the
// interval (a contender, for a tenth of it). While a fallback leads, a
// member that is not one and is healthy but failing is due once per
// interval, under any policy. One query at a time claims a member. A
// fallback is due only when one leads: the selector puts a usable
// member that is not a fallback first, and while there is one, no
// fallback's provider is sent the house's queries.
func (e *explorer) pick(cands []Member, now time.Time) Member {
	ns := now.UnixNano()
	short := int64(e.interval / closeFactor)
	lead := time.Duration(-1) // cands[0]'s score, read when first needed
	fallbackLeads := e.fallback[cands[0]]
	for _, m := range cands[1:] {
		c := e.claims[m]
		if c == nil || e.fallback[m] && !fallbackLeads {
			continue
		}
		last := c.Load()
		if ns-last < short {
			continue // the common case: one atomic load per member
		}
		st := m.Standing(now)
		due := int64(e.interval)
		switch {
		case fallbackLeads && !e.fallback[m] && st.Healthy && st.Failing:
			// A primary to bring back: once per interval.
		case !e.measure || st.tier() != 0:
			continue
		default:
			if lead < 0 {
				lead = cands[0].Standing(now).Score
			}
			if st.Score <= closeScore*lead {
				due = short
			}
		}
		since := last
		if !st.Sampled.IsZero() {
			since = max(since, st.Sampled.UnixNano())
		}
		if ns-since < due {
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
