package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestServeStale: when the upstreams fail, an entry expired for at most
// StaleMaxAge is answered with TTL 30 and EDE 3 (19 for NXDOMAIN), the
// EDE only to a client with EDNS; older entries, or serve-stale off, give
// the failure.
func TestServeStale(t *testing.T) {
	refused := &fakeUpstream{answer: func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		return new(dns.Msg).SetRcode(q, dns.RcodeRefused), nil
	}}
	servfail := &fakeUpstream{answer: func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		return new(dns.Msg).SetRcode(q, dns.RcodeServerFailure), nil
	}}
	for _, tc := range []struct {
		name      string
		first     func(*dns.Msg) *dns.Msg
		down      *fakeUpstream
		noStale   bool
		edns      bool
		expiredBy time.Duration
		wantStale bool
		wantEDE   uint16
	}{
		{name: "unreachable", first: withA(300, 2), down: unreachable(), edns: true, expiredBy: time.Hour, wantStale: true, wantEDE: dns.ExtendedErrorCodeStaleAnswer},
		{name: "SERVFAIL", first: withA(300, 1), down: servfail, edns: true, expiredBy: time.Second, wantStale: true, wantEDE: dns.ExtendedErrorCodeStaleAnswer},
		{name: "REFUSED", first: withA(300, 1), down: refused, edns: true, expiredBy: time.Second, wantStale: true, wantEDE: dns.ExtendedErrorCodeStaleAnswer},
		{name: "no EDNS, no EDE", first: withA(300, 1), down: unreachable(), expiredBy: time.Hour, wantStale: true},
		{name: "NXDOMAIN", first: negativeAnswer(dns.RcodeNameError, 300, 300), down: unreachable(), edns: true, expiredBy: time.Hour, wantStale: true, wantEDE: dns.ExtendedErrorCodeStaleNXDOMAINAnswer},
		{name: "last stale second", first: withA(300, 1), down: unreachable(), edns: true, expiredBy: DefaultStaleMaxAge - time.Second, wantStale: true, wantEDE: dns.ExtendedErrorCodeStaleAnswer},
		{name: "too old", first: withA(300, 1), down: unreachable(), edns: true, expiredBy: DefaultStaleMaxAge},
		{name: "serve-stale off", first: withA(300, 1), down: unreachable(), noStale: true, edns: true, expiredBy: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := answering(tc.first)
			var down bool
			flaky := resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
				if down {
					return tc.down.Resolve(ctx, req)
				}
				return up.Resolve(ctx, req)
			})
			clk := newClock()
			c, r := newCache(t, Options{Now: clk.Now, ServeStale: !tc.noStale}, flaky)
			q := query("example.com.", dns.TypeA, tc.edns, false)
			fresh := resolve(t, r, q)
			down = true
			clk.advance(300*time.Second + tc.expiredBy)
			m, err := resolver.ResolveMsg(context.Background(), r, q)
			if !tc.wantStale {
				if err == nil && m.Rcode != dns.RcodeServerFailure && m.Rcode != dns.RcodeRefused {
					t.Fatalf("got %v, want the failure", m)
				}
				return
			}
			if err != nil {
				t.Fatalf("no stale answer: %v", err)
			}
			if m.Rcode != fresh.Rcode || len(m.Answer) != len(fresh.Answer) || len(m.Ns) != len(fresh.Ns) {
				t.Fatalf("stale answer %v, want the cached %v", m, fresh)
			}
			for _, ttl := range ttlsOf(m) {
				if ttl != 30 {
					t.Fatalf("stale TTLs %v, want 30", ttlsOf(m))
				}
			}
			e := resolver.EDE(m)
			switch {
			case tc.edns && (e == nil || e.InfoCode != tc.wantEDE):
				t.Fatalf("EDE %v, want %d", e, tc.wantEDE)
			case !tc.edns && m.IsEdns0() != nil:
				t.Fatalf("OPT %v for a client without EDNS", m.IsEdns0())
			}
			if st := c.Stats(); st.Stale != 1 {
				t.Fatalf("stats %+v, want 1 stale", st)
			}

			// Failure recheck (RFC 8767 §5): for ServfailTTL the stale
			// answer comes at once, without asking again.
			asked := tc.down.count()
			resolve(t, r, q)
			if tc.down.count() != asked {
				t.Fatal("asked upstream again within the SERVFAIL TTL")
			}
			// Back up: the next query after that is answered fresh, and the
			// stale answer's EDE has not stuck to the entry.
			down = false
			clk.advance(DefaultServfailTTL)
			m = resolve(t, r, q)
			m2 := resolve(t, r, q)
			for _, m := range []*dns.Msg{m, m2} {
				if e := resolver.EDE(m); e != nil || fmt.Sprint(ttlsOf(m)) != fmt.Sprint(ttlsOf(fresh)) {
					t.Fatalf("after recovery: TTLs %v EDE %v, want %v and none", ttlsOf(m), e, ttlsOf(fresh))
				}
			}
		})
	}
}

// TestStaleAfter: when the upstream has not answered within StaleAfter,
// the stale answer goes out and the query goes on, refreshing the entry
// when its answer comes.
func TestStaleAfter(t *testing.T) {
	var slow bool
	release := make(chan struct{})
	up := &fakeUpstream{answer: func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		if slow {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return withA(300, 1)(q), nil
	}}
	clk := newClock()
	// StaleAfter is short so that the test does not wait; nothing here
	// depends on how short.
	c, r := newCache(t, Options{Now: clk.Now, ServeStale: true, StaleAfter: time.Millisecond}, up)
	q := query("example.com.", dns.TypeA, true, false)
	resolve(t, r, q)
	slow = true
	clk.advance(301 * time.Second)
	m := resolve(t, r, q)
	if e := resolver.EDE(m); e == nil || e.InfoCode != dns.ExtendedErrorCodeStaleAnswer || m.Answer[0].Header().Ttl != 30 {
		t.Fatalf("got %v, want a stale answer", m)
	}
	close(release)
	waitFor(t, "the refresh", func() bool { return len(upFlights(r)) == 0 })
	m = resolve(t, r, q)
	if e := resolver.EDE(m); e != nil || m.Answer[0].Header().Ttl != 300 || up.count() != 2 {
		t.Fatalf("after the refresh: %v after %d queries, want a fresh answer after 2", m, up.count())
	}
	if st := c.Stats(); st.Stale != 1 || st.Hits != 1 {
		t.Fatalf("stats %+v", st)
	}
}
