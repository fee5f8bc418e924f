package health

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeTarget answers probes as its current mode says and records what the
// checker told it.
type fakeTarget struct {
	name     string
	failing  atomic.Bool
	hang     atomic.Bool
	probes   atomic.Int32
	inflight atomic.Int32
	maxInfl  atomic.Int32
	failed   chan struct{}

	mu      sync.Mutex
	verdict []bool
	changed chan bool
}

func newFake(name string) *fakeTarget {
	return &fakeTarget{name: name, failed: make(chan struct{}, 1), changed: make(chan bool, 16)}
}

func (f *fakeTarget) Name() string { return f.name }
func (f *fakeTarget) Healthy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.verdict) == 0 || f.verdict[len(f.verdict)-1]
}
func (f *fakeTarget) Failed() <-chan struct{} { return f.failed }
func (f *fakeTarget) SetHealthy(up bool) {
	f.mu.Lock()
	f.verdict = append(f.verdict, up)
	f.mu.Unlock()
	f.changed <- up
}

func (f *fakeTarget) Probe(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxInfl.Load()
		if n <= m || f.maxInfl.CompareAndSwap(m, n) {
			break
		}
	}
	f.probes.Add(1)
	if f.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.failing.Load() {
		return nil, errors.New("connection refused")
	}
	r := new(dns.Msg)
	r.SetReply(q)
	return r, nil
}

// waitVerdict waits for the next transition the checker reports.
func waitVerdict(t *testing.T, f *fakeTarget, want bool) {
	t.Helper()
	select {
	case got := <-f.changed:
		if got != want {
			t.Fatalf("%s: verdict %v, want %v", f.name, got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no verdict %v within 10s", f.name, want)
	}
}

func start(t *testing.T, opts Options, targets ...Target) *Checker {
	t.Helper()
	c := New(opts, targets...)
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

func TestFallAndRise(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fall, rise int
	}{
		{"defaults", 0, 0},
		{"fall3rise2", 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake("u")
			f.failing.Store(true)
			var changes atomic.Int32
			c := start(t, Options{Interval: 5 * time.Millisecond, DownInterval: 5 * time.Millisecond,
				Fall: tc.fall, Rise: tc.rise,
				OnChange: func(string, bool, string) { changes.Add(1) }}, f)
			waitVerdict(t, f, false)
			fall := max(tc.fall, defaultFall)
			if st, _ := c.State("u"); st.Up || st.Fails < fall || st.LastError == "" {
				t.Fatalf("state after fall: %+v", st)
			}
			if got := f.probes.Load(); got < int32(fall) {
				t.Fatalf("marked down after %d probes, want at least %d", got, fall)
			}
			f.failing.Store(false)
			waitVerdict(t, f, true)
			if st, _ := c.State("u"); !st.Up || st.Successes < max(tc.rise, defaultRise) {
				t.Fatalf("state after rise: %+v", st)
			}
			if changes.Load() != 2 {
				t.Fatalf("OnChange called %d times, want 2", changes.Load())
			}
		})
	}
}

func TestRcodeFailures(t *testing.T) {
	f := newFake("u")
	c := New(Options{}, f)
	for _, rc := range []int{dns.RcodeServerFailure, dns.RcodeRefused} {
		srv := &rcodeTarget{fakeTarget: f, rcode: rc}
		c.probe(context.Background(), srv)
	}
	if st, _ := c.State("u"); st.Up {
		t.Fatalf("two SERVFAIL/REFUSED probes left upstream up: %+v", st)
	}
	nx := &rcodeTarget{fakeTarget: f, rcode: dns.RcodeNameError}
	if !c.probe(context.Background(), nx) {
		t.Fatal("NXDOMAIN probe answer counted as failure")
	}
}

type rcodeTarget struct {
	*fakeTarget
	rcode int
}

func (r *rcodeTarget) Probe(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetRcode(q, r.rcode)
	return m, nil
}

func TestPassiveFailureBringsProbeForward(t *testing.T) {
	f := newFake("u")
	// A healthy upstream is probed every hour: only the failure signal
	// can cause the second and third probes.
	start(t, Options{Interval: time.Hour, DownInterval: time.Hour, Fall: 2}, f)
	waitProbes(t, f, 1)
	f.failing.Store(true)
	f.failed <- struct{}{}
	waitProbes(t, f, 2)
	f.failed <- struct{}{}
	waitVerdict(t, f, false)
}

func waitProbes(t *testing.T, f *fakeTarget, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.probes.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d probes, want %d", f.probes.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestOneProbeInFlight(t *testing.T) {
	f := newFake("u")
	f.hang.Store(true)
	start(t, Options{Interval: time.Millisecond, DownInterval: time.Millisecond, Timeout: 20 * time.Millisecond}, f)
	for range 20 {
		select {
		case f.failed <- struct{}{}:
		default:
		}
	}
	waitVerdict(t, f, false)
	if m := f.maxInfl.Load(); m != 1 {
		t.Fatalf("%d probes in flight at once, want 1", m)
	}
}

func TestStopEndsProbing(t *testing.T) {
	f := newFake("u")
	f.hang.Store(true)
	c := New(Options{Timeout: time.Hour}, f)
	c.Start()
	waitProbes(t, f, 1)
	c.Stop() // must return although the probe would hang for an hour
	if st, _ := c.State("u"); !st.Up {
		t.Fatal("stopping marked the upstream down")
	}
}

// TestStartsFromTargetsVerdict: a checker taking over an upstream marked
// down (on reload) keeps it down until probes bring it up, and reports
// that transition.
func TestStartsFromTargetsVerdict(t *testing.T) {
	f := newFake("u")
	f.verdict = []bool{false}
	c := start(t, Options{Interval: time.Hour, DownInterval: 5 * time.Millisecond}, f)
	waitVerdict(t, f, true)
	if st, _ := c.State("u"); !st.Up {
		t.Fatalf("state %+v", st)
	}
}
