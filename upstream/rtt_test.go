package upstream

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestRTT(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	t.Run("unmeasured", func(t *testing.T) {
		var r rtt
		if s, ok := r.smoothed(); ok || s != 0 || r.score(t0) != 0 {
			t.Errorf("smoothed %v %v, score %v; want nothing", s, ok, r.score(t0))
		}
	})
	t.Run("first sample is the estimate", func(t *testing.T) {
		var r rtt
		r.observe(80*ms, t0)
		if s, ok := r.smoothed(); !ok || s != 80*ms {
			t.Errorf("smoothed %v %v, want 80ms", s, ok)
		}
	})
	t.Run("moving average", func(t *testing.T) {
		var r rtt
		r.observe(100*ms, t0)
		r.observe(200*ms, t0) // no time passed: no decay
		if s, _ := r.smoothed(); s != 125*ms {
			t.Errorf("smoothed %v, want 100ms + %v × 100ms = 125ms", s, rttAlpha)
		}
		for range 50 {
			r.observe(20*ms, t0)
		}
		if s, _ := r.smoothed(); s < 20*ms || s > 21*ms {
			t.Errorf("smoothed %v after many 20ms samples, want about 20ms", s)
		}
	})
	t.Run("score decays by half each half-life; smoothed does not", func(t *testing.T) {
		var r rtt
		r.observe(400*ms, t0)
		for _, tc := range []struct {
			age  time.Duration
			want time.Duration
		}{
			{-time.Second, 400 * ms}, // a clock step back is no age
			{0, 400 * ms},
			{rttHalfLife, 200 * ms},
			{2 * rttHalfLife, 100 * ms},
			{rttHalfLife / 2, 282842712}, // 400ms / √2
		} {
			if got := r.score(t0.Add(tc.age)); got != tc.want {
				t.Errorf("score after %v: %v, want %v", tc.age, got, tc.want)
			}
		}
		if s, _ := r.smoothed(); s != 400*ms {
			t.Errorf("smoothed %v, want 400ms", s)
		}
	})
	t.Run("an old estimate weighs less against a new sample", func(t *testing.T) {
		for _, tc := range []struct {
			age  time.Duration
			want time.Duration
		}{
			{0, 325 * ms},                            // 400 + 1/4 × (100 − 400)
			{rttHalfLife, 212500 * time.Microsecond}, // old weight 3/4 × 1/2
			{20 * rttHalfLife, 100 * ms},             // the old estimate is worthless
		} {
			var r rtt
			r.observe(400*ms, t0)
			r.observe(100*ms, t0.Add(tc.age))
			if s, _ := r.smoothed(); s < tc.want-ms/1000 || s > tc.want+ms/1000 {
				t.Errorf("after %v: smoothed %v, want %v", tc.age, s, tc.want)
			}
		}
	})
}

func TestHedgeDelay(t *testing.T) {
	ms := time.Millisecond
	opts := SelectorOptions{AttemptTimeout: time.Second, HedgeDelay: 50 * ms}
	tests := []struct {
		name string
		srtt time.Duration // 0: unmeasured
		want time.Duration
	}{
		{"unmeasured", 0, unmeasuredHedge * 50 * ms},
		{"fast: the floor", 5 * ms, 50 * ms},
		{"a few RTTs", 100 * ms, hedgeFactor * 100 * ms},
		{"slow: the attempt timeout", 600 * ms, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := New(Options{Name: "u", Addr: netip.MustParseAddrPort("192.0.2.53:853"), TLSName: testTLSName})
			if err != nil {
				t.Fatal(err)
			}
			if tt.srtt > 0 {
				u.rtt.observe(tt.srtt, time.Now())
			}
			s := newSelector(t, opts, u)
			if got := s.hedgeDelay(u); got != tt.want {
				t.Errorf("hedge delay %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStallAfter(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		srtt time.Duration // 0: unmeasured
		want time.Duration
	}{
		{0, time.Second},
		{time.Millisecond, 250 * ms},
		{50 * ms, 400 * ms},
		{500 * ms, time.Second},
	}
	for _, tt := range tests {
		u, err := New(Options{Name: "u", Addr: netip.MustParseAddrPort("192.0.2.53:853"), TLSName: testTLSName})
		if err != nil {
			t.Fatal(err)
		}
		if tt.srtt > 0 {
			u.rtt.observe(tt.srtt, time.Now())
		}
		if got := u.stallAfter(); got != tt.want {
			t.Errorf("srtt %v: stall after %v, want %v", tt.srtt, got, tt.want)
		}
	}
}

// TestSilenceDoesNotStretchHedging: attempts abandoned to a faster
// upstream and failed attempts push the upstream down the fastest
// ranking, but leave the hedge delay and the stall window, which time a
// silent upstream, where its answered round trips put them. Otherwise
// each hedge would lengthen the next and a frozen resolver would again
// cost the attempt timeout.
func TestSilenceDoesNotStretchHedging(t *testing.T) {
	u, err := New(Options{Name: "u", Addr: netip.MustParseAddrPort("192.0.2.53:853"), TLSName: testTLSName})
	if err != nil {
		t.Fatal(err)
	}
	s := newSelector(t, SelectorOptions{HedgeDelay: 50 * time.Millisecond, AttemptTimeout: 1500 * time.Millisecond}, u)
	u.succeed(40*time.Millisecond, dns.RcodeSuccess)
	hedge, stall, rank := s.hedgeDelay(u), u.stallAfter(), u.rank.score(time.Now())
	for range 20 {
		// Abandoned just after the hedge fired, and outright failures.
		u.fail(time.Now().Add(-hedge-10*time.Millisecond), context.Canceled)
		u.fail(time.Now().Add(-time.Second), context.DeadlineExceeded)
	}
	if got := s.hedgeDelay(u); got != hedge {
		t.Errorf("hedge delay %v after silence, want %v as before", got, hedge)
	}
	if got := u.stallAfter(); got != stall {
		t.Errorf("stall window %v after silence, want %v as before", got, stall)
	}
	if got := u.rank.score(time.Now()); got <= rank {
		t.Errorf("ranking RTT %v after silence, want above %v", got, rank)
	}
}
