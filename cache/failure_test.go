package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestServfailCached: an upstream's SERVFAIL, and the selector's error
// when no upstream answers, are remembered per key for ServfailTTL, with
// their Extended DNS Error, then asked again.
func TestServfailCached(t *testing.T) {
	servfail := func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		m := new(dns.Msg).SetRcode(q, dns.RcodeServerFailure)
		resolver.SetEDE(m, resolver.NewRequest(q), dns.ExtendedErrorCodeDNSBogus, "signature expired")
		return m, nil
	}
	for _, tc := range []struct {
		name     string
		answer   func(context.Context, *dns.Msg) (*dns.Msg, error)
		ttl      time.Duration
		wantCode uint16
		cached   time.Duration // 0: not cached
	}{
		{"upstream SERVFAIL", servfail, 0, dns.ExtendedErrorCodeDNSBogus, DefaultServfailTTL},
		{"no upstream", unreachable().answer, 0, dns.ExtendedErrorCodeNetworkError, DefaultServfailTTL},
		{"own TTL", servfail, time.Second, dns.ExtendedErrorCodeDNSBogus, time.Second},
		{"not cached", servfail, -1, dns.ExtendedErrorCodeDNSBogus, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &fakeUpstream{answer: tc.answer}
			clk := newClock()
			_, r := newCache(t, Options{Now: clk.Now, ServfailTTL: tc.ttl}, up)
			ask := func() {
				t.Helper()
				q := query("fail.example.", dns.TypeA, true, false)
				q.Id = 99
				m, err := resolver.ResolveMsg(context.Background(), r, q)
				if err != nil {
					m = resolver.ServFail(resolver.NewRequest(q), err) // what the listener does
				}
				if m.Rcode != dns.RcodeServerFailure || m.Id != 99 {
					t.Fatalf("got %v", m)
				}
				if e := resolver.EDE(m); e == nil || e.InfoCode != tc.wantCode {
					t.Fatalf("EDE %v, want %d", e, tc.wantCode)
				}
			}
			ask()
			ask()
			if tc.cached == 0 {
				if up.count() != 2 {
					t.Fatalf("%d upstream queries, want 2", up.count())
				}
				return
			}
			clk.advance(tc.cached - time.Millisecond)
			ask()
			if up.count() != 1 {
				t.Fatalf("%d upstream queries within the SERVFAIL TTL, want 1", up.count())
			}
			clk.advance(time.Millisecond)
			ask()
			if up.count() != 2 {
				t.Fatalf("%d upstream queries after the SERVFAIL TTL, want 2", up.count())
			}
		})
	}
}

// TestNotCached: answers that must not be kept are passed on and asked
// again: truncated, FORMERR, an upstream's own stale answer,
// the answer to an RD=0 query; and queries the cache stays out of go
// straight through.
func TestNotCached(t *testing.T) {
	truncated := func(q *dns.Msg) *dns.Msg {
		m := withA(300, 1)(q)
		m.Truncated = true
		return m
	}
	upstreamStale := func(q *dns.Msg) *dns.Msg {
		m := withA(30, 1)(q)
		resolver.SetEDE(m, resolver.NewRequest(q), dns.ExtendedErrorCodeStaleAnswer, "")
		return m
	}
	rcode := func(rc int) func(*dns.Msg) *dns.Msg {
		return func(q *dns.Msg) *dns.Msg { return new(dns.Msg).SetRcode(q, rc) }
	}
	plain := func(*dns.Msg) {}
	for _, tc := range []struct {
		name   string
		build  func(*dns.Msg) *dns.Msg
		adjust func(*dns.Msg)
	}{
		{"truncated", truncated, plain},
		{"FORMERR", rcode(dns.RcodeFormatError), plain},
		{"upstream's stale answer", upstreamStale, plain},
		{"RD=0", withA(300, 1), func(q *dns.Msg) { q.RecursionDesired = false }},
		// A Request is always a standard query with one question (the
		// listener answers others itself); a signed one is its
		// client's alone.
		{"TSIG", withA(300, 1), func(q *dns.Msg) { q.SetTsig("key.example.", dns.HmacSHA256, 300, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := answering(tc.build)
			c, r := newCache(t, Options{Now: newClock().Now}, up)
			for range 2 {
				q := query("example.com.", dns.TypeA, true, false)
				tc.adjust(q)
				want := tc.build(q)
				m := resolve(t, r, q)
				if m.Rcode != want.Rcode || m.Truncated != want.Truncated || len(m.Answer) != len(want.Answer) {
					t.Fatalf("got %v, want %v", m, want)
				}
			}
			if up.count() != 2 {
				t.Fatalf("%d upstream queries, want 2", up.count())
			}
			if st := c.Stats(); st.Entries != 0 {
				t.Fatalf("%d entries, want 0", st.Entries)
			}
		})
	}
}

// TestUncacheableReplacesEntry: once an expired entry's name answers
// with something not to keep (TTL 0 now), the old data is gone: it is
// not served stale later.
func TestUncacheableReplacesEntry(t *testing.T) {
	var ttl uint32 = 60
	up := answering(func(q *dns.Msg) *dns.Msg { return withA(ttl, 1)(q) })
	clk := newClock()
	c, r := newCache(t, Options{Now: clk.Now, ServeStale: true}, up)
	q := query("example.com.", dns.TypeA, true, false)
	resolve(t, r, q)
	clk.advance(time.Minute)
	ttl = 0
	if m := resolve(t, r, q); m.Answer[0].Header().Ttl != 0 {
		t.Fatalf("got %v, want the TTL 0 answer", m)
	}
	if st := c.Stats(); st.Entries != 0 {
		t.Fatalf("%d entries, want 0", st.Entries)
	}
}

// TestMissDeadline: a miss is bounded by its client's deadline, and
// says why when nothing answered in time.
func TestMissDeadline(t *testing.T) {
	release := make(chan struct{})
	up := &fakeUpstream{answer: func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		select {
		case <-release:
			return withA(300, 1)(q), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	_, r := newCache(t, Options{Now: newClock().Now}, up)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := resolver.ResolveMsg(ctx, r, query("slow.example.", dns.TypeA, false, false))
	var re *resolver.Error
	if !errors.As(err, &re) || re.Code != dns.ExtendedErrorCodeNoReachableAuthority || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want EDE 22 wrapping the context's", err)
	}
	// The upstream query goes on for the cache, detached from the client
	// that gave up: the answer is there for the next one.
	close(release)
	waitFor(t, "the answer stored", func() bool { return up.count() == 1 && len(upFlights(r)) == 0 })
	resolve(t, r, query("slow.example.", dns.TypeA, false, false))
	if up.count() != 1 {
		t.Fatalf("%d upstream queries, want 1", up.count())
	}
}

// upFlights returns the keys with an upstream query in flight.
func upFlights(r resolver.Resolver) []key {
	c := r.(*cached).c
	var keys []key
	for i := range c.store.shards {
		sh := &c.store.shards[i]
		sh.mu.Lock()
		for _, f := range sh.flights {
			keys = append(keys, f.key)
		}
		sh.mu.Unlock()
	}
	return keys
}
