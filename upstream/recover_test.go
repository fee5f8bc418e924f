package upstream

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
)

// lostName is the query name the primary of these tests never answers.
const lostName = "lost.test."

// dropLost answers every query but lostName's, which it drops.
func dropLost(q *dns.Msg, reply func(*dns.Msg)) {
	if q.Question[0].Name == lostName {
		return
	}
	dottest.Answer("192.0.2.1")(q, reply)
}

// TestProbeFailureIsNotAStreak: a lost health probe is counted as an
// error and shown as the last one, but does not make the upstream
// Failing (whether it is down is the checker's to judge, with fall and
// rise); a lost real query does; an answered probe ends a streak.
func TestProbeFailureIsNotAStreak(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, dropLost)
	lose := func(ex func(context.Context, *dns.Msg) (*dns.Msg, error)) error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := ex(ctx, query(lostName, dns.TypeNS))
		return err
	}
	answer := func(ex func(context.Context, *dns.Msg) (*dns.Msg, error)) error {
		_, err := ex(ctxFor(t, testTimeout), query(".", dns.TypeNS))
		return err
	}
	for _, tc := range []struct {
		name        string
		run         func(u *Upstream) error
		wantFailing bool
		wantErrors  uint64
	}{
		{"a lost probe", func(u *Upstream) error {
			if err := lose(u.Probe); err == nil {
				return errors.New("the lost probe succeeded")
			}
			return nil
		}, false, 1},
		{"a lost real query", func(u *Upstream) error {
			if err := lose(u.Exchange); err == nil {
				return errors.New("the lost query succeeded")
			}
			return nil
		}, true, 1},
		{"a lost real query, then an answered probe", func(u *Upstream) error {
			if err := lose(u.Exchange); err == nil {
				return errors.New("the lost query succeeded")
			}
			return answer(u.Probe)
		}, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpstream(t, ca, srv, Options{Name: "primary"})
			if err := tc.run(u); err != nil {
				t.Fatal(err)
			}
			if st := u.Standing(time.Now()); st.Failing != tc.wantFailing {
				t.Errorf("Failing %v, want %v", st.Failing, tc.wantFailing)
			}
			s := u.Stats()
			if got := s.Errors[ErrorTimeout]; got != tc.wantErrors {
				t.Errorf("%d timeouts counted, want %d", got, tc.wantErrors)
			}
			if !strings.Contains(s.LastError, "deadline") {
				t.Errorf("last error %q, want the lost query's timeout", s.LastError)
			}
		})
	}
}

// TestFailingPrimaryComesBack: one primary that answers, one fallback of
// another transport. A single real query the primary loses makes it
// Failing and puts the fallback in front; the explorer then sends the
// primary a copy of a client query within about its interval, under
// every policy, and its answer puts the primary back in front, so the
// fallback's provider sees the house's queries for about a second, not
// until the next probe. Before the loss and after the recovery, the
// fallback is asked nothing.
func TestFailingPrimaryComesBack(t *testing.T) {
	for _, policy := range []string{PolicyFastest, PolicyOrdered, PolicyRoundRobin} {
		t.Run(policy, func(t *testing.T) {
			ca := dottest.NewCA(t)
			primarySrv := startServer(t, ca, dropLost)
			primary := newUpstream(t, ca, primarySrv, Options{Name: "primary"})
			fbSrv := startDoH(t, ca, HTTPS, dottest.Answer("192.0.2.2"))
			fb := newDoHUpstream(t, ca, fbSrv, Options{Name: "fallback"})
			p, err := NewPolicy(policy)
			if err != nil {
				t.Fatal(err)
			}
			// No attempt times out or hedges: a loaded machine's slow
			// handshake must not send a query to the fallback.
			s := newSelector(t, SelectorOptions{Policy: p, AttemptTimeout: longAttempt, HedgeDelay: noHedge,
				Fallbacks: []Member{fb}}, primary)
			i := 0
			ask := func() string {
				t.Helper()
				req := resolver.NewRequest(query(indexName(i), dns.TypeA))
				i++
				if _, err := s.Resolve(ctxFor(t, testTimeout), req); err != nil {
					t.Fatalf("query %d: %v", i, err)
				}
				return req.Info.Upstream
			}
			for range 10 {
				ask()
			}
			if n := fbSrv.Queries(); n != 0 {
				t.Fatalf("fallback asked %d queries while the primary answered", n)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_, err = primary.Exchange(ctx, query(lostName, dns.TypeA))
			cancel()
			if err == nil || !primary.Standing(time.Now()).Failing {
				t.Fatalf("the lost query: %v, primary Failing %v; want an error, Failing", err, primary.Standing(time.Now()).Failing)
			}
			lost := time.Now()
			// Bounded in time and count: the copy is due one interval
			// after the loss, far sooner than the next probe (10 s).
			const within = 4 * exploreInterval
			for n := 0; ask() != "primary"; n++ {
				if time.Since(lost) > within || n > 10_000 {
					t.Fatalf("no answer from the primary %v after the loss (%d queries)", time.Since(lost), n)
				}
				time.Sleep(5 * time.Millisecond) // a house's pace, not a flood
			}
			if since := time.Since(lost); since < exploreInterval/2 {
				t.Errorf("primary back %v after the loss: before its exploration was due", since)
			}
			if primary.Standing(time.Now()).Failing {
				t.Error("primary still Failing after it answered")
			}
			// The fallback's own attempt of the query the primary won
			// may still reach it: what counts is that none of the
			// queries asked from now on does.
			after := make(map[string]bool)
			for range 10 {
				after[dns.Fqdn(indexName(i))] = true
				if from := ask(); from != "primary" {
					t.Fatalf("answered by %s after the primary came back", from)
				}
			}
			for _, r := range fbSrv.Requests() {
				var m dns.Msg
				if m.Unpack(r.Body) == nil && len(m.Question) == 1 && after[m.Question[0].Name] {
					t.Errorf("fallback asked %s after the primary came back", m.Question[0].Name)
				}
			}
		})
	}
}

// TestExplorerRecovers: while a fallback leads, a member that is not one,
// healthy but failing, is due a copy once per interval, whether or not
// the explorer measures RTTs (fastest); one marked down is left to the
// health checker, and while a member that is not a fallback leads, a
// failing one is explored only as fastest explores any (never).
func TestExplorerRecovers(t *testing.T) {
	now := time.Now()
	const ms = time.Millisecond
	recent := now.Add(-exploreInterval / 2)
	stale := now.Add(-time.Hour)
	lead := &fakeMember{name: "lead", st: Standing{Healthy: true, Score: 10 * ms, Sampled: now}}
	fb := &fakeMember{name: "fb", st: Standing{Healthy: true, Score: 20 * ms, Sampled: now}}
	failing := &fakeMember{name: "failing", st: Standing{Healthy: true, Failing: true, Score: 500 * ms, Sampled: stale}}
	justFailed := &fakeMember{name: "justFailed", st: Standing{Healthy: true, Failing: true, Score: 500 * ms, Sampled: recent}}
	down := &fakeMember{name: "down", st: Standing{Failing: true, Score: 500 * ms, Sampled: stale}}
	fallback := map[Member]bool{fb: true}
	for _, tc := range []struct {
		name    string
		cands   []Member
		measure bool
		at      time.Time
		want    []string // the picks, in turn, until nil
	}{
		{"a fallback leads: the failing primary", []Member{fb, failing, down}, true, now, []string{"failing"}},
		{"without measuring too", []Member{fb, failing, down}, false, now, []string{"failing"}},
		{"not within the interval of its failure", []Member{fb, justFailed}, false, now, nil},
		{"after it", []Member{fb, justFailed}, false, recent.Add(exploreInterval), []string{"justFailed"}},
		{"a primary leads: no failing one", []Member{lead, failing, fb}, true, now, nil},
		{"down: none", []Member{fb, down}, false, now, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newExplorer(tc.cands, fallback, tc.measure)
			var got []string
			for range len(tc.cands) {
				m := e.pick(tc.cands, tc.at)
				if m == nil {
					break
				}
				got = append(got, m.Name())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("picks %v, want %v", got, tc.want)
			}
			if len(got) > 0 {
				if m := e.pick(tc.cands, tc.at.Add(exploreInterval/2)); m != nil {
					t.Errorf("picked %s again within the interval", m.Name())
				}
				if m := e.pick(tc.cands, tc.at.Add(exploreInterval)); m == nil || m.Name() != got[0] {
					t.Errorf("picked %v an interval later, want %s again", m, got[0])
				}
			}
		})
	}
}
