package upstream

import (
	"math"
	"sync"
	"time"
)

const (
	// rttAlpha weighs a new sample in the smoothed RTT, as TCP's SRTT
	// does (RFC 6298 uses 1/8; DNS RTTs vary more, so we follow faster).
	rttAlpha = 0.25
	// rttHalfLife is how long an unrefreshed estimate takes to lose half
	// its weight: an upstream that was slow once drifts back into play
	// and is measured again instead of being shunned for good.
	rttHalfLife = 60 * time.Second
)

// rtt is an exponentially weighted moving average of one upstream's
// round-trip times that decays toward zero while no samples come.
type rtt struct {
	mu   sync.Mutex
	srtt time.Duration
	last time.Time
}

func (r *rtt) observe(d time.Duration, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last.IsZero() {
		r.srtt = d
	} else {
		r.srtt = decay(r.srtt, now.Sub(r.last))
		r.srtt += time.Duration(rttAlpha * float64(d-r.srtt))
	}
	r.last = now
}

// score is the estimate as of now, decayed by the time since the last
// sample; 0 when nothing was ever measured.
func (r *rtt) score(now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last.IsZero() {
		return 0
	}
	return decay(r.srtt, now.Sub(r.last))
}

// smoothed is the undecayed estimate and whether there is one.
func (r *rtt) smoothed() (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srtt, !r.last.IsZero()
}

func decay(d, age time.Duration) time.Duration {
	if age <= 0 {
		return d
	}
	return time.Duration(float64(d) * math.Exp2(-float64(age)/float64(rttHalfLife)))
}
