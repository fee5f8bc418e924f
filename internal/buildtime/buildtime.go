// Package buildtime says when the running binary was built: a time the
// true time cannot precede, which upstream certificates are judged at
// while the system clock is plainly unset (upstream.Clock).
//
// It owns nothing else. The time is the latest of what is known, each a
// lower bound of when the binary was built:
//
//   - the commit time Go stamps into binaries built from a version
//     control checkout (debug.ReadBuildInfo's vcs.time; no flags needed);
//   - a time stamped at build with
//     -ldflags "-X github.com/dotproxy/dotproxy/internal/buildtime.stamp=2026-12-06T00:00:00Z"
//     (RFC 3339), for builds without the checkout (a Docker context
//     without .git);
//   - floor, a date committed here, moved forward now and then: the
//     least any build of this source can claim.
package buildtime

import (
	"runtime/debug"
	"sync"
	"time"
)

// floor is a date shortly before this source was written. Moving it
// forward (at a release, say) narrows the grace an unset clock gets; it
// must never be later than the real date of a build.
var floor = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// stamp is set with -ldflags -X at build time; "" when not.
var stamp string

// Time returns the build time: the latest of the VCS commit time, the
// stamp and the floor.
var Time = sync.OnceValue(func() time.Time {
	var vcs string
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				vcs = s.Value
			}
		}
	}
	return latest(floor, vcs, stamp)
})

// latest returns the latest of floor and the RFC 3339 times given; one
// that does not parse is left out.
func latest(floor time.Time, times ...string) time.Time {
	t := floor
	for _, s := range times {
		if v, err := time.Parse(time.RFC3339, s); err == nil && v.After(t) {
			t = v
		}
	}
	return t
}
