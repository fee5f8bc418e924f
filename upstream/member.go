package upstream

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// Member is what a Selector needs of an upstream, whatever its transport:
// a name, an exchange, its standing for the policies and for hedging,
// and a count of the queries moved on from it. *Upstream, the
// DNS-over-TLS client, is one; every transport joins the selector the
// same way.
type Member interface {
	// Name is the member's configured name, for logs and Info.
	Name() string
	// Exchange sends q and returns the answer, with q's ID and question.
	// q is the caller's and is not modified.
	Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
	// Standing reports the member's health and measured speed as of
	// now.
	Standing(now time.Time) Standing
	// FailedOver counts a query the selector moved on from this member
	// to another, after a failure or as a hedge.
	FailedOver()
}

// Standing is a member's health and speed, as the policies rank it and
// the selector times its hedges by.
type Standing struct {
	// Healthy is the health checker's last verdict (true until the
	// first).
	Healthy bool
	// Failing: real queries to it are failing in a row right now.
	Failing bool
	// Score ranks the member for fastest, lower first: its smoothed RTT,
	// with failures and attempts abandoned to a faster member counted
	// as lower bounds, fading while no sample comes; 0 when it was
	// never measured.
	Score time.Duration
	// RTT is the smoothed round-trip time of its answers, which times
	// hedges; 0 before the first.
	RTT time.Duration
	// Sampled is when Score last had a sample; zero: never.
	Sampled time.Time
}

var _ Member = (*Upstream)(nil)

// Standing implements Member.
func (u *Upstream) Standing(now time.Time) Standing { return u.standing(now, u.Healthy()) }
