package cache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestMissPanicDoesNotPoisonKey: a panic under the miss that runs the
// upstream query (the listener recovers it and answers SERVFAIL) ends
// that query's flight: the next miss on the key asks again instead of
// waiting on a query that never ends.
func TestMissPanicDoesNotPoisonKey(t *testing.T) {
	var calls atomic.Int32
	up := &fakeUpstream{answer: func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return withA(60, 1)(q), nil
	}}
	_, r := newCache(t, Options{}, up)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the caller")
			}
		}()
		resolve(t, r, query("p.example.", dns.TypeA, false, false))
	}()
	m := resolve(t, r, query("p.example.", dns.TypeA, false, false))
	if len(m.Answer) != 1 || calls.Load() != 2 {
		t.Fatalf("after the panic: %v, upstream asked %d times", m, calls.Load())
	}
}

// TestCloseFailsJoiners: Close ends the wait of a miss that joined
// another miss's upstream query.
func TestCloseFailsJoiners(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	up := &fakeUpstream{answer: func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return withA(60, 1)(q), nil
	}}
	c := New(Options{})
	r := c.Wrap(up)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	go resolver.ResolveMsg(ctx, r, query("l.example.", dns.TypeA, false, false))
	waitFor(t, "the first miss to ask upstream", func() bool { return up.count() == 1 })
	joined := make(chan error, 1)
	go func() {
		_, err := resolver.ResolveMsg(ctx, r, query("l.example.", dns.TypeA, false, false))
		joined <- err
	}()
	waitFor(t, "the second miss to join", func() bool {
		sh := c.store.shard(func() uint64 {
			k := keyOf(resolver.NewRequest(query("l.example.", dns.TypeA, false, false)))
			return k.hash(c.store.seed)
		}())
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for _, f := range sh.flights {
			if f.waiters == 2 {
				return true
			}
		}
		return false
	})
	c.Close()
	if err := <-joined; !errors.Is(err, errClosed) {
		t.Fatalf("joiner after Close: %v, want errClosed", err)
	}
}
