package upstream

import (
	"crypto/x509"
	"log/slog"
	"sync/atomic"
	"time"
)

// Clock is the time the upstreams' certificates are judged by: the
// system clock, except while it is plainly unset. A router without a
// battery-backed clock boots at 1970 or at its firmware's date, and finds
// its NTP servers by name, through dotproxy: judged by such a clock every
// certificate is "not yet valid", no upstream answers, and the clock is
// never set. While the clock reads earlier than Floor (the binary's build
// time, which the true time cannot precede), certificates' validity
// periods are judged at Floor instead (see For). Chains, names and SPKI
// pins are checked in full all the same; only the date moves, and only
// forward.
//
// One Clock serves every upstream, across reloads. It is safe for
// concurrent use.
//
// A certificate issued after the build (public resolvers' rotate every
// few months) is not yet valid at the floor; judged at the floor, it
// would fail on just the routers the grace is for. So a chain is judged
// at the latest of the floor and its own certificates' start dates: one
// whose dates all end before the floor still fails.
type Clock struct {
	now   func() time.Time
	floor time.Time
	log   *slog.Logger

	graced  atomic.Uint64 // certificate checks judged at the floor
	inGrace atomic.Bool   // the last check was; for the logs
}

// NewClock returns a Clock reading now (nil: time.Now) with floor as the
// earliest time it believes; a zero floor gives no grace. log (nil:
// discard) gets a Warn when the grace begins and an Info when it ends.
func NewClock(now func() time.Time, floor time.Time, log *slog.Logger) *Clock {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Clock{now: now, floor: floor, log: log}
}

// For is the time to judge the certificate chain certs at now: the
// clock's; while the clock is earlier than the floor, the latest of the
// floor and certs' NotBefore dates.
func (c *Clock) For(certs []*x509.Certificate) time.Time {
	now := c.now()
	if now.Before(c.floor) {
		at := c.floor
		for _, cert := range certs {
			if cert.NotBefore.After(at) {
				at = cert.NotBefore
			}
		}
		c.graced.Add(1)
		if c.inGrace.CompareAndSwap(false, true) {
			c.log.Warn("the system clock is earlier than this build, so it is not set yet; "+
				"judging upstream certificates' validity at the build time until it is",
				"clock", now.UTC().Format(time.RFC3339), "build_time", c.floor.UTC().Format(time.RFC3339))
		}
		return at
	}
	if c.inGrace.CompareAndSwap(true, false) {
		c.log.Info("the system clock is set; judging upstream certificates by it again",
			"clock", now.UTC().Format(time.RFC3339))
	}
	return now
}

// Graced counts the certificate checks judged at the floor.
func (c *Clock) Graced() uint64 { return c.graced.Load() }
