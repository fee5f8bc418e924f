package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/dotproxy/dotproxy/internal/loglimit"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/miekg/dns"
)

// Defaults for SelectorOptions' zero values.
const (
	defaultAttemptTimeout = 1500 * time.Millisecond // well inside a stub resolver's 5 s
	defaultHedgeFloor     = 50 * time.Millisecond
	// hedgeFactor times an upstream's smoothed RTT is how long an attempt
	// runs alone before the next upstream is asked too.
	hedgeFactor = 3
	// unmeasuredHedge is the hedge delay, in floors, for an upstream whose
	// RTT is not known yet.
	unmeasuredHedge = 4
)

// SelectorOptions configures a Selector.
type SelectorOptions struct {
	Policy         Policy        // nil: fastest
	AttemptTimeout time.Duration // per upstream attempt, default 1.5s
	HedgeDelay     time.Duration // floor of the hedge delay, default 50ms
	// Fallbacks are members kept for when no other member is usable
	// (healthy and not failing): they are asked after the usable ones,
	// before those failing or marked down, and the explorer sends them
	// no copies of queries while another member is usable, so that no
	// extra provider sees the house's queries needlessly. They are not
	// also given among NewSelector's members.
	Fallbacks []Member
	Logger    *slog.Logger
}

// Selector resolves queries through a set of upstreams: it orders them by
// its policy, asks the first, asks the next when an attempt fails or when
// it is slow to answer (hedging), and returns the first valid answer.
// Identical queries in flight together are sent once.
type Selector struct {
	members  []Member        // the fallbacks last
	fallback map[Member]bool // nil when there are none
	policy   Policy
	opts     SelectorOptions
	log      *slog.Logger
	flight   flight
	// explorer: fastest's RTT exploration (the other policies spread
	// queries anyway), and with fallbacks, under any policy, the copies
	// that bring a failing primary back; nil when neither applies.
	explorer *explorer
	// failoverLog limits the Info lines of failovers away from each
	// member: a dead upstream must not log once per query.
	failoverLog map[Member]*loglimit.Limiter
	giveUpLog   loglimit.Limiter // "query failed on every upstream"
}

var _ resolver.Resolver = (*Selector)(nil)

// NewSelector builds a Selector over members and opts.Fallbacks, which
// it does not own.
func NewSelector(opts SelectorOptions, members ...Member) (*Selector, error) {
	members = append(slices.Clip(members), opts.Fallbacks...)
	if len(members) == 0 {
		return nil, errors.New("selector: no upstreams")
	}
	if opts.Policy == nil {
		opts.Policy = fastest{}
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = defaultAttemptTimeout
	}
	if opts.HedgeDelay <= 0 {
		opts.HedgeDelay = defaultHedgeFloor
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Selector{members: members, policy: opts.Policy, opts: opts, log: opts.Logger,
		failoverLog: make(map[Member]*loglimit.Limiter, len(members))}
	for _, m := range members {
		s.failoverLog[m] = new(loglimit.Limiter)
	}
	if len(opts.Fallbacks) > 0 {
		s.fallback = make(map[Member]bool, len(opts.Fallbacks))
		for _, m := range opts.Fallbacks {
			s.fallback[m] = true
		}
	}
	if _, ok := opts.Policy.(fastest); ok || s.fallback != nil {
		s.explorer = newExplorer(members, s.fallback, ok)
	}
	return s, nil
}

// order is the members in the order one query tries them: the policy's,
// under the selector's tiers (rank).
func (s *Selector) order(ms []Member) []Member {
	if s.fallback == nil {
		return s.policy.Order(ms)
	}
	if p, ok := s.policy.(ranker); ok {
		return p.orderBy(ms, s.rank)
	}
	// A Policy of another package: its order, within the tiers.
	var buf rankBuf
	return membersOf(byTier(&buf, s.policy.Order(ms), s.rank))
}

// rank is m's tier in a selector with fallbacks, lower first: the
// members usable now (healthy, not failing); then the fallbacks, ranked
// among themselves by health; then the other members failing or marked
// down. So once the usable members have failed a query, or none is left,
// the fallbacks carry it, and an unusable member is still the last
// resort.
func (s *Selector) rank(m Member, st Standing) int {
	t := st.tier()
	switch {
	case s.fallback[m]:
		return 1 + t
	case t == 0:
		return 0
	}
	return healthTiers + t
}

// Resolve implements resolver.Resolver. It records in req.Info the
// upstream whose answer it returns. An Inline request gets
// resolver.ErrWouldWait: every answer it gives waits on an upstream.
// Identical requests in flight together go upstream once, unless they
// were joined already (req.Coalesced: the cache's) or are signed.
func (s *Selector) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	if req.Inline {
		return resolver.Response{}, resolver.ErrWouldWait
	}
	q := req.Msg()
	if len(q.Question) != 1 {
		return resolver.Response{}, fmt.Errorf("selector: query has %d questions", len(q.Question))
	}
	var r *dns.Msg
	var err error
	if req.Coalesced || req.Signed {
		// Joined already (the cache's), or for this client alone: a
		// TSIG-signed answer must not go to another.
		r, err = s.resolve(ctx, q, &req.Info)
	} else {
		r, err = s.flight.do(ctx, q, &req.Info, s.resolve)
	}
	if err != nil && ctx.Err() != nil && !carriesEDE(err) {
		// The caller's deadline ended its wait before the shared run,
		// bound by the same deadline, could report: it still gets the
		// Extended DNS Error saying nothing answered in time.
		r, err = s.giveUp(q, nil, []error{err})
	}
	return resolver.Response{Msg: r}, err
}

// carriesEDE reports whether err carries an Extended DNS Error
// (resolver.Error). The target whose address errors.As takes escapes:
// declared in Resolve's body, it was allocated for every query, failing
// or not; here, only when this runs.
func carriesEDE(err error) bool {
	var re *resolver.Error
	return errors.As(err, &re)
}

// resolve runs the attempts for one query (see attempts) and records in
// info the upstream whose answer it returns. It returns once every
// attempt has let go of q, which the caller owns again then.
func (s *Selector) resolve(ctx context.Context, q *dns.Msg, info *resolver.Info) (*dns.Msg, error) {
	return s.resolveAmong(ctx, q, info, s.order(s.members))
}

// resolveAmong is resolve over the candidates cands, in that order.
func (s *Selector) resolveAmong(ctx context.Context, q *dns.Msg, info *resolver.Info, cands []Member) (*dns.Msg, error) {
	a := &attempts{s: s, ctx: ctx, q: q, cands: cands}
	if s.explorer != nil && len(a.cands) > 1 {
		a.explored = s.explorer.pick(a.cands, time.Now())
	}
	defer a.end()
	if !a.start() {
		a.wait()
	}
	if a.won != nil {
		info.SetUpstream(a.wonFrom.Name())
		return a.won, nil
	}
	return s.giveUpFrom(info, q, a.fallback, a.fallbackFrom, a.errs)
}

// giveUpFrom is giveUp, recording in info the upstream whose SERVFAIL or
// REFUSED is returned, when one is.
func (s *Selector) giveUpFrom(info *resolver.Info, q, fallback *dns.Msg, from Member, errs []error) (*dns.Msg, error) {
	if fallback != nil {
		info.SetUpstream(from.Name())
	}
	return s.giveUp(q, fallback, errs)
}

// usable: SERVFAIL and REFUSED say this upstream cannot answer; another
// may.
func usable(r *dns.Msg) bool {
	return r.Rcode != dns.RcodeServerFailure && r.Rcode != dns.RcodeRefused
}

// giveUp ends a query no upstream answered usably: with an upstream's own
// SERVFAIL or REFUSED when there was one (it may carry the resolver's
// Extended DNS Error), else with an error saying why (see giveUpEDE).
func (s *Selector) giveUp(q *dns.Msg, fallback *dns.Msg, errs []error) (*dns.Msg, error) {
	if fallback != nil {
		return fallback, nil
	}
	err := errors.Join(errs...)
	code, text := giveUpEDE(errs)
	// The name only at Debug (issue 16): Warn is for the user to act on,
	// once per interval however many queries fail.
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("query failed on every upstream", "qname", q.Question[0].Name, "err", err)
	} else {
		s.giveUpLog.Warn(s.log, "query failed on every upstream", "err", err)
	}
	return nil, &resolver.Error{Code: code, Text: text, Err: fmt.Errorf("%w: %w", ErrNoUpstream, err)}
}

// giveUpEDE is the RFC 8914 Extended DNS Error for a query that failed
// with errs: 22 (No Reachable Authority) when nothing answered in time,
// 23 (Network Error) when the upstreams could not be reached, and 0
// (Other), saying so, when some answered but not validly (an HTTP error
// status such as a wrong URL path's 404, an answer that does not check,
// a reset stream): they were reached, and "unreachable" would send the
// user looking for a network fault.
func giveUpEDE(errs []error) (uint16, string) {
	var network, invalid bool
	for _, e := range errs {
		switch {
		case errors.Is(e, context.DeadlineExceeded) || errors.Is(e, context.Canceled):
		case errors.Is(e, ErrBadAnswer) || errors.Is(e, ErrStreamReset):
			invalid = true
		default:
			network = true
		}
	}
	switch {
	case invalid && network:
		return dns.ExtendedErrorCodeOther, "upstreams unreachable or answering invalidly"
	case invalid:
		return dns.ExtendedErrorCodeOther, "upstreams answered invalidly"
	case network:
		return dns.ExtendedErrorCodeNetworkError, "upstreams unreachable"
	}
	return dns.ExtendedErrorCodeNoReachableAuthority, "no upstream answered in time"
}

// hedgeDelay is how long an attempt on u runs alone.
func (s *Selector) hedgeDelay(u Member) time.Duration {
	srtt := u.Standing(time.Now()).RTT
	if srtt == 0 {
		return unmeasuredHedge * s.opts.HedgeDelay
	}
	return min(max(hedgeFactor*srtt, s.opts.HedgeDelay), s.opts.AttemptTimeout)
}

// ResolveAmong resolves q as Resolve does, through only the members for
// which use reports true, and returns the answer, with q's ID and
// question, or an error. It is for the lookup of an upstream's own host
// name, which must not be asked of that upstream: so it never joins an
// identical query in flight, which may be waiting on any member.
func (s *Selector) ResolveAmong(ctx context.Context, q *dns.Msg, use func(Member) bool) (*dns.Msg, error) {
	if len(q.Question) != 1 {
		return nil, fmt.Errorf("selector: query has %d questions", len(q.Question))
	}
	var cands []Member
	for _, m := range s.members {
		if use(m) {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: none may be asked", ErrNoUpstream)
	}
	var info resolver.Info
	return s.resolveAmong(ctx, q, &info, s.order(cands))
}
