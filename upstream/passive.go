package upstream

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// passive is a member's health and speed as its real queries show them,
// shared by every transport: the smoothed RTT of its answers, its rank
// for fastest, its failures in a row, its last error and its counters.
type passive struct {
	// rtt averages answered round trips only: it times hedging and
	// stall detection, which must not stretch while the member is
	// silent. rank also counts failures and attempts abandoned to a
	// faster member, as lower bounds: it orders members for fastest.
	rtt      rtt
	rank     rtt
	streak   atomic.Int32 // real queries failed in a row (not probes)
	last     atomic.Pointer[lastError]
	counters counters
}

// succeed accounts for an answer with rcode, d after the query went out.
func (h *passive) succeed(d time.Duration, rcode int) {
	now := time.Now()
	h.rtt.observe(d, now)
	h.rank.observe(d, now)
	h.streak.Store(0)
	h.counters.answered(d, rcode)
}

// fail accounts for a failed attempt started at start, and returns err.
// One given up because another member answered first (context.Canceled)
// is no failure, but tells that this one is at least that slow; failed
// reports whether it was a failure.
func (h *passive) fail(start time.Time, err error) (failed bool) {
	d := time.Since(start)
	if errors.Is(err, context.Canceled) {
		h.counters.abandoned.Add(1)
		if s, ok := h.rank.smoothed(); ok && d > s {
			h.rank.observe(d, time.Now())
		}
		return false
	}
	h.counters.errors[classify(err)].Add(1)
	h.rank.observe(max(d, failurePenalty), time.Now())
	h.streak.Add(1)
	h.last.Store(&lastError{msg: err.Error(), at: time.Now()})
	return true
}

// probeFailed accounts for a failed health probe, and returns err: an
// error in the counters and the last error, but neither a failure in the
// streak nor a penalty in the rank (see Upstream.Probe). One cancelled
// (the checker stopping) is counted as abandoned.
func (h *passive) probeFailed(err error) error {
	if errors.Is(err, context.Canceled) {
		h.counters.abandoned.Add(1)
		return err
	}
	h.counters.errors[classify(err)].Add(1)
	h.last.Store(&lastError{msg: err.Error(), at: time.Now()})
	return err
}

// standing is the member's Standing at now, healthy being the health
// checker's verdict, where there is one.
func (h *passive) standing(now time.Time, healthy bool) Standing {
	st := Standing{Healthy: healthy, Failing: h.streak.Load() > 0}
	st.Score, st.Sampled = h.rank.scoreAt(now)
	st.RTT, _ = h.rtt.smoothed()
	return st
}

// stats returns a snapshot of the counters, the RTTs and the last error,
// for the member of that name and address.
func (h *passive) stats(name, addr string, healthy bool) UpstreamStats {
	c := &h.counters
	s := UpstreamStats{
		Name:      name,
		Address:   addr,
		Healthy:   healthy,
		Queries:   c.queries.Load(),
		Answers:   c.answers.Load(),
		Abandoned: c.abandoned.Load(),
		Failovers: c.failovers.Load(),
		RTT: RTTHistogram{
			Bounds: append([]time.Duration(nil), rttBounds[:]...),
			Counts: make([]uint64, len(c.rtt)),
			Sum:    time.Duration(c.rttSum.Load()),
		},
	}
	s.SRTT, _ = h.rtt.smoothed()
	for k := range c.errors {
		s.Errors[k] = c.errors[k].Load()
	}
	for i := range c.rtt {
		s.RTT.Counts[i] = c.rtt[i].Load()
	}
	if l := h.last.Load(); l != nil {
		s.LastError, s.LastErrorAt = l.msg, l.at
	}
	return s
}

// FailedOver implements Member for every transport: it counts a query the
// selector moved on from this member to another, after a failure or as a
// hedge.
func (h *passive) FailedOver() { h.counters.failovers.Add(1) }
