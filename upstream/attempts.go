package upstream

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// attempts is one query's way through the upstreams, in policy order:
// the next one is asked when the latest fails, or when it has run for
// its hedge delay without an answer. The first usable answer wins and
// the other attempts are cancelled.
//
// The first attempt runs in the query's own goroutine when its upstream
// has a connection open (the common case): written at once, its answer
// awaited beside the one timer that hedges it and bounds it. Later
// attempts, and a first one that must wait for a dial, run Exchange in
// goroutines of their own.
type attempts struct {
	s     *Selector
	ctx   context.Context
	q     *dns.Msg
	cands []Member
	next  int // cands[:next] have been asked

	// explored, when set, is asked a copy of the query beside the first
	// attempt (see explorer); exploredCh brings its outcome.
	explored   Member
	exploredCh chan attempt

	// first is the first attempt, made by Upstream.send, while waiting
	// says it is unanswered. A value, not a pointer: a pointer to it
	// stored in the attempts would move them to the heap.
	first         pending
	waiting       bool
	firstDeadline time.Time // when it times out

	results chan attempt // reports of the attempts in goroutines
	running int          // goroutine attempts not reported yet
	actx    context.Context
	cancel  context.CancelFunc

	timer   *time.Timer
	hedgeAt time.Time // when the next candidate is asked; zero: none is due

	won, fallback         *dns.Msg // the answer; an upstream's SERVFAIL or REFUSED, kept in case nothing better comes
	wonFrom, fallbackFrom Member
	errs                  []error
}

// attempt is what a goroutine attempt reports.
type attempt struct {
	u   Member
	r   *dns.Msg
	err error
}

// start asks the first candidate. It reports true when the query is
// decided already: that attempt failed and there is nothing left to ask.
func (a *attempts) start() bool {
	u := a.cands[0]
	a.next = 1
	var sent bool
	var err error
	if up, ok := u.(*Upstream); ok {
		sent, err = up.send(a.ctx, a.q, &a.first)
	}
	switch {
	case sent:
		a.waiting, a.firstDeadline = true, a.first.start.Add(a.s.opts.AttemptTimeout)
	case err != nil:
		return a.report(u, nil, err) // it asks the next candidate, if any
	default:
		a.launch(u)
	}
	if a.explored != nil {
		a.exploredCh = make(chan attempt, 1)
		a.s.explore(a.explored, a.q, a.exploredCh)
	}
	a.armHedge(u)
	return false
}

// wait handles what the attempts report until the query is decided.
func (a *attempts) wait() {
	for {
		var firstCh <-chan result
		if a.waiting {
			firstCh = a.first.f.answer()
		}
		var timer <-chan time.Time
		if a.timer != nil {
			timer = a.timer.C
		}
		select {
		case res := <-firstCh:
			p := &a.first
			a.waiting = false
			r, err, resend := p.finish(a.ctx, res)
			if resend {
				// Exchange resends it on another connection, within the
				// first attempt's time, and counts it: as one query.
				p.u.counters.queries.Add(^uint64(0))
				a.launchUntil(p.u, a.firstDeadline)
				continue
			}
			if a.report(p.u, r, err) {
				return
			}
		case at := <-a.results:
			a.running--
			if a.report(at.u, at.r, at.err) {
				return
			}
		case at := <-a.exploredCh:
			// Its failure is none of this query's business; its answer,
			// first, is.
			a.exploredCh = nil
			if at.err == nil && usable(at.r) {
				a.won, a.wonFrom = at.r, at.u
				return
			}
		case <-timer:
			if a.tick() {
				return
			}
		case <-a.ctx.Done():
			a.errs = append(a.errs, a.ctx.Err())
			return
		}
	}
}

// report takes one attempt's outcome and reports whether the query is
// decided: answered usably, or nothing left to ask or wait for. A failed
// attempt moves the query on to the next candidate at once.
func (a *attempts) report(u Member, r *dns.Msg, err error) bool {
	if err == nil && usable(r) {
		if a.next > 1 {
			a.s.log.DebugContext(a.ctx, "answered after failover", "upstream", u.Name(), "qname", a.q.Question[0].Name, "attempts", a.next)
		}
		a.won, a.wonFrom = r, u
		return true
	}
	if err != nil {
		a.errs = append(a.errs, err)
		a.logFailover(u, "upstream attempt failed, failing over", "err", err)
	} else {
		a.fallback, a.fallbackFrom = r, u
		a.logFailover(u, "upstream answered "+dns.RcodeToString[r.Rcode]+", failing over")
	}
	if a.next < len(a.cands) {
		u.FailedOver()
		a.launchNext()
		return false
	}
	return !a.waiting && a.running == 0
}

// logFailover logs a failed attempt at u. At Debug every one is logged
// with its query name; at Info the names stay out, since this log is
// not the query log, and so does the flood: one line per upstream per
// interval, counting the rest, because a resolver that fails fails every
// query.
func (a *attempts) logFailover(u Member, msg string, args ...any) {
	args = append([]any{"upstream", u.Name()}, args...)
	if a.s.log.Enabled(a.ctx, slog.LevelDebug) {
		a.s.log.DebugContext(a.ctx, msg, append(args, "qname", a.q.Question[0].Name)...)
		return
	}
	a.s.failoverLog[u].Log(a.ctx, a.s.log, slog.LevelInfo, msg, args...)
}

// tick handles the timer: the first attempt's timeout, then a hedge
// that is due. It reports whether the query is decided.
func (a *attempts) tick() bool {
	now := time.Now()
	if a.waiting && !now.Before(a.firstDeadline) {
		p := &a.first
		a.waiting = false
		if a.report(p.u, nil, p.abandon(context.DeadlineExceeded)) {
			return true
		}
	}
	if !a.hedgeAt.IsZero() && !now.Before(a.hedgeAt) && a.next < len(a.cands) {
		a.s.log.DebugContext(a.ctx, "slow upstream, hedging", "upstream", a.cands[a.next-1].Name(),
			"next", a.cands[a.next].Name(), "qname", a.q.Question[0].Name)
		a.cands[a.next-1].FailedOver()
		a.launchNext()
		return false
	}
	a.rearm()
	return false
}

// launchNext asks the next candidate, in a goroutine, and hedges it.
func (a *attempts) launchNext() {
	u := a.cands[a.next]
	a.next++
	a.launch(u)
	a.armHedge(u)
}

// launch runs an attempt on u in a goroutine, with the attempt timeout.
func (a *attempts) launch(u Member) { a.launchUntil(u, time.Time{}) }

// launchUntil runs an attempt on u in a goroutine that ends at deadline,
// or after the attempt timeout when deadline is zero.
func (a *attempts) launchUntil(u Member, deadline time.Time) {
	if a.results == nil {
		// Room for every candidate and the first attempt's resend: no
		// attempt ever blocks on reporting.
		a.results = make(chan attempt, len(a.cands)+1)
		a.actx, a.cancel = context.WithCancel(a.ctx)
	}
	a.running++
	results, actx, q, timeout := a.results, a.actx, a.q, a.s.opts.AttemptTimeout
	if deadline.IsZero() {
		deadline = time.Now().Add(timeout)
	}
	go func() {
		ctx, cancel := context.WithDeadline(actx, deadline)
		defer cancel()
		r, err := u.Exchange(ctx, q)
		results <- attempt{u, r, err}
	}()
}

// armHedge sets when the candidate after u is asked, u being the latest
// asked, and rearms the timer.
func (a *attempts) armHedge(u Member) {
	a.hedgeAt = time.Time{}
	if a.next < len(a.cands) {
		a.hedgeAt = time.Now().Add(a.s.hedgeDelay(u))
	}
	a.rearm()
}

// rearm sets the timer for the earlier of the next hedge and the first
// attempt's timeout, or stops it when neither is due.
func (a *attempts) rearm() {
	at := a.hedgeAt
	if a.waiting && (at.IsZero() || a.firstDeadline.Before(at)) {
		at = a.firstDeadline
	}
	if at.IsZero() {
		if a.timer != nil {
			a.timer.Stop()
		}
		return
	}
	d := time.Until(at)
	if a.timer == nil {
		a.timer = newTimer(d)
	} else {
		a.timer.Reset(d)
	}
}

// end gives up on the attempts still running and waits for them to let
// go of the query; cancelled ones return at once.
func (a *attempts) end() {
	if a.waiting {
		p := &a.first
		a.waiting = false
		err := a.ctx.Err()
		if err == nil {
			err = context.Canceled // another attempt answered
		}
		p.abandon(err)
	}
	if a.cancel != nil {
		a.cancel()
		for ; a.running > 0; a.running-- {
			<-a.results
		}
	}
	if a.timer != nil {
		a.timer.Stop()
		timers.Put(a.timer)
		a.timer = nil
	}
}

// timers holds stopped timers for the next queries' hedges: one per
// query otherwise, and a timer is three allocations. A stopped timer
// delivers nothing after Stop returns (Go 1.23's timers), so the next
// query's Reset starts it clean.
var timers sync.Pool

// newTimer returns a timer that fires after d, from timers if it has one.
func newTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}
