package upstream

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/internal/testlog"
	"github.com/miekg/dns"
)

// fakeTime is a clock a test sets.
type fakeTime struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeTime) Now() time.Time  { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeTime) set(t time.Time) { f.mu.Lock(); f.now = t; f.mu.Unlock() }

// TestClockGrace: while the clock reads earlier than the floor (the
// build time), certificates' dates are judged at the floor; chain, name
// and pins are checked all the same, and a certificate not valid at the
// floor still fails. Once the clock is set, the check is strict again.
func TestClockGrace(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, dottest.Answer("192.0.2.1"))
	now := time.Now()
	unset := time.Date(1970, 1, 1, 0, 0, 10, 0, time.UTC)
	other := dottest.SPKIPin(ca.Leaf(t, "other.test"))
	for _, tc := range []struct {
		name     string
		clock    time.Time
		floor    time.Time
		tlsName  string
		pins     [][]byte
		ok       bool
		inGrace  bool
		errMatch string
	}{
		{name: "unset clock, no floor", clock: unset, errMatch: "not yet valid"},
		{name: "unset clock, floor", clock: unset, floor: now, ok: true, inGrace: true},
		{name: "unset clock, wrong name", clock: unset, floor: now, tlsName: "wrong.test", inGrace: true, errMatch: "wrong.test"},
		{name: "unset clock, pin mismatch", clock: unset, floor: now, pins: [][]byte{other}, inGrace: true, errMatch: "pin"},
		{name: "unset clock, expired at the floor", clock: unset, floor: now.Add(48 * time.Hour), inGrace: true, errMatch: "expired"},
		{name: "set clock", clock: now, floor: now.Add(-time.Hour), ok: true},
		{name: "set clock, expired", clock: now.Add(48 * time.Hour), floor: now.Add(-time.Hour), errMatch: "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock((&fakeTime{now: tc.clock}).Now, tc.floor, nil)
			u := newUpstream(t, ca, srv, Options{Clock: clock, TLSName: tc.tlsName, SPKIPins: tc.pins})
			_, err := u.Exchange(ctxFor(t, testTimeout), query("example.com.", dns.TypeA))
			if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.errMatch) {
				t.Fatalf("exchange: %v; want ok %v or an error saying %q", err, tc.ok, tc.errMatch)
			}
			if (clock.Graced() > 0) != tc.inGrace {
				t.Fatalf("graced %d, want in grace %v", clock.Graced(), tc.inGrace)
			}
		})
	}
}

// TestClockGraceEnds: one Warn when the grace begins, however many
// handshakes it covers; one Info, and strict checks, once the clock is
// set.
func TestClockGraceEnds(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, dottest.Answer("192.0.2.1"))
	rec := &testlog.Recorder{}
	ft := &fakeTime{now: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
	clock := NewClock(ft.Now, time.Now(), slog.New(rec))
	for range 3 {
		u := newUpstream(t, ca, srv, Options{Clock: clock})
		if _, err := u.Exchange(ctxFor(t, testTimeout), query("example.com.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		u.Close()
	}
	if n := len(rec.Find("the system clock is earlier than this build, so it is not set yet; judging upstream certificates' validity at the build time until it is")); n != 1 {
		t.Fatalf("%d grace warnings, want 1", n)
	}
	graced := clock.Graced()
	ft.set(time.Now().Add(48 * time.Hour)) // set, and past the certificate's end
	u := newUpstream(t, ca, srv, Options{Clock: clock})
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("example.com.", dns.TypeA)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("after the clock was set: %v, want the certificate judged strictly", err)
	}
	if clock.Graced() != graced || len(rec.Find("the system clock is set; judging upstream certificates by it again")) != 1 {
		t.Fatal("the grace did not end with the clock set")
	}
}

// TestClockGraceLaterCertificate: a certificate issued after the build,
// as public resolvers' are every few months, is judged at its own start
// while the clock is unset, not at the floor, where it would not be
// valid yet; one that ended before the floor still fails.
func TestClockGraceLaterCertificate(t *testing.T) {
	now := time.Now()
	floor := now.AddDate(0, -6, 0) // a build six months old
	unset := time.Date(1970, 1, 1, 0, 0, 10, 0, time.UTC)
	ca := dottest.NewCAFor(t, now.AddDate(-2, 0, 0), now.AddDate(2, 0, 0))
	for _, tc := range []struct {
		name     string
		from, to time.Time
		ok       bool
	}{
		{"issued after the build", now.AddDate(0, -1, 0), now.AddDate(0, 2, 0), true},
		{"ended before the build", now.AddDate(-1, 0, 0), floor.AddDate(0, 0, -1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dottest.Start(t, dottest.Options{Cert: ca.LeafFor(t, tc.from, tc.to, testTLSName), Handler: dottest.Answer("192.0.2.1")})
			clock := NewClock((&fakeTime{now: unset}).Now, floor, nil)
			u := newUpstream(t, ca, srv, Options{Clock: clock})
			_, err := u.Exchange(ctxFor(t, testTimeout), query("example.com.", dns.TypeA))
			if tc.ok != (err == nil) || clock.Graced() == 0 {
				t.Fatalf("exchange: %v, graced %d; want ok %v, in grace", err, clock.Graced(), tc.ok)
			}
		})
	}
}
