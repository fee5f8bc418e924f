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
// round-trip times. Its score, which ranks upstreams, decays toward zero
// while no samples come; the estimate itself does not.
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
		// The old estimate's weight, not its value, fades with age: a
		// sample after a long quiet mostly replaces it. (Blending with
		// the decayed value would drag the estimate toward zero, and
		// with it the hedge delay and the stall window derived from it.)
		old := decayFactor(now.Sub(r.last)) * (1 - rttAlpha)
		r.srtt += time.Duration((1 - old) * float64(d-r.srtt))
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

// scoreAt is score, and when the last sample came (zero: never).
func (r *rtt) scoreAt(now time.Time) (time.Duration, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last.IsZero() {
		return 0, time.Time{}
	}
	return decay(r.srtt, now.Sub(r.last)), r.last
}

// smoothed is the undecayed estimate and whether there is one.
func (r *rtt) smoothed() (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srtt, !r.last.IsZero()
}

func decay(d, age time.Duration) time.Duration {
	return time.Duration(float64(d) * decayFactor(age))
}

// decayFactor is what is left after age of something that halves every
// rttHalfLife.
func decayFactor(age time.Duration) float64 {
	if age <= 0 {
		return 1
	}
	return math.Exp2(-float64(age) / float64(rttHalfLife))
}
