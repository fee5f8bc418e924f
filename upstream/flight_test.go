package upstream

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/resolver"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// gated answers only once the test opens the gate, and then slowly, so
// that queries the test sends meanwhile are in flight together.
func gated(t *testing.T) (dottest.Handler, func()) {
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	return func(q *dns.Msg, reply func(*dns.Msg)) {
		<-gate
		dottest.Delay(100*time.Millisecond, dottest.Answer("192.0.2.1"))(q, reply)
	}, open
}

// TestDedupe: identical queries in flight together go upstream once and
// every caller gets the answer with its own ID and question.
func TestDedupe(t *testing.T) {
	const n = 20
	ca := dottest.NewCA(t)
	h, open := gated(t)
	srv := startServer(t, ca, h)
	s := newSelector(t, SelectorOptions{}, newUpstream(t, ca, srv, Options{}))

	var started, done sync.WaitGroup
	started.Add(n)
	for i := range n {
		done.Go(func() {
			// Each asks in its own letter case.
			name := []byte("dup.example.")
			for j := range name {
				if i>>(j%5)&1 == 1 {
					name[j] = strings.ToUpper(string(name[j]))[0]
				}
			}
			q := query(string(name), dns.TypeA)
			q.Id = uint16(1000 + i)
			started.Done()
			r, err := resolve(s, ctxFor(t, testTimeout), q)
			switch {
			case err != nil:
				t.Errorf("caller %d: %v", i, err)
			case r.Id != q.Id || r.Question[0] != q.Question[0]:
				t.Errorf("caller %d asked %d %v, got back %d %v", i, q.Id, q.Question[0], r.Id, r.Question[0])
			case len(r.Answer) != 1:
				t.Errorf("caller %d: answer %v", i, r.Answer)
			}
		})
	}
	started.Wait()
	waitFor(t, "the query to reach the server", func() bool { return srv.Queries() >= 1 })
	open()
	done.Wait()
	if got := srv.Queries(); got != 1 {
		t.Errorf("server saw %d queries, want 1", got)
	}
}

// TestDedupeKeepsDistinctQueries: the same name asked for another type,
// or with other flags, is another question and goes upstream on its own.
func TestDedupeKeepsDistinctQueries(t *testing.T) {
	do := func(q *dns.Msg) { q.SetEdns0(4096, true) }
	cd := func(q *dns.Msg) { q.CheckingDisabled = true }
	tests := []struct {
		name string
		qs   []*dns.Msg
	}{
		{"A and AAAA", []*dns.Msg{query("www.example.", dns.TypeA), query("www.example.", dns.TypeAAAA)}},
		{"DO bit", []*dns.Msg{query("www.example.", dns.TypeA), edit(query("www.example.", dns.TypeA), do)}},
		{"CD bit", []*dns.Msg{query("www.example.", dns.TypeA), edit(query("www.example.", dns.TypeA), cd)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			h, open := gated(t)
			srv := startServer(t, ca, h)
			s := newSelector(t, SelectorOptions{}, newUpstream(t, ca, srv, Options{}))
			var wg sync.WaitGroup
			for _, q := range tt.qs {
				wg.Go(func() {
					if _, err := resolve(s, ctxFor(t, testTimeout), q); err != nil {
						t.Error(err)
					}
				})
			}
			// Merged queries would leave the server one short, and this
			// wait would fail.
			waitFor(t, "every query to reach the server", func() bool { return srv.Queries() == int64(len(tt.qs)) })
			open()
			wg.Wait()
		})
	}
}

// TestNotJoined: requests marked Coalesced (the cache's, one per key
// already) each go upstream, the selector's own coalescing, a second
// layer of it, skipped for them; so do signed ones, whose answer is for
// their client alone.
func TestNotJoined(t *testing.T) {
	for _, mark := range []func(*resolver.Request){
		func(r *resolver.Request) { r.Coalesced = true },
		func(r *resolver.Request) { r.Signed = true },
	} {
		ca := dottest.NewCA(t)
		h, open := gated(t)
		srv := startServer(t, ca, h)
		s := newSelector(t, SelectorOptions{}, newUpstream(t, ca, srv, Options{}))
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				req := resolver.NewRequest(query("www.example.", dns.TypeA))
				mark(req)
				if _, err := s.Resolve(ctxFor(t, testTimeout), req); err != nil {
					t.Error(err)
				}
			})
		}
		waitFor(t, "both queries to reach the server", func() bool { return srv.Queries() == 2 })
		open()
		wg.Wait()
	}
}

func edit(q *dns.Msg, f func(*dns.Msg)) *dns.Msg {
	f(q)
	return q
}

// TestDedupeCallerGivesUp: the first caller leaving does not fail the
// others waiting on the same run, and the caller may reuse its query
// once Resolve has returned.
func TestDedupeCallerGivesUp(t *testing.T) {
	ca := dottest.NewCA(t)
	h, open := gated(t)
	srv := startServer(t, ca, h)
	s := newSelector(t, SelectorOptions{}, newUpstream(t, ca, srv, Options{}))

	first := query("www.example.", dns.TypeA)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		_, err := resolve(s, ctx, first)
		gone <- err
	}()
	waitFor(t, "the query to reach the server", func() bool { return srv.Queries() == 1 })

	second := make(chan error, 1)
	go func() {
		_, err := resolve(s, ctxFor(t, testTimeout), query("www.example.", dns.TypeA))
		second <- err
	}()
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: %v, want context.Canceled", err)
	}
	// The caller owns its query again, as the resolver.Resolver contract
	// says, and reuses it while the shared run goes on.
	open()
	first.Id = 1
	first.Question[0].Name = "reused.example."
	if err := <-second; err != nil {
		t.Errorf("second caller: %v", err)
	}
}

// TestFlightLeaderPanics: a panic in the first caller's resolving ends
// the flight: a caller that joined it fails at once instead of waiting
// for its deadline, and the next query runs anew.
func TestFlightLeaderPanics(t *testing.T) {
	var f flight
	q := new(dns.Msg).SetQuestion("panic.example.", dns.TypeA)
	joined := make(chan struct{})
	fn := func(context.Context, *dns.Msg, *resolver.Info) (*dns.Msg, error) {
		<-joined
		panic("boom")
	}
	go func() {
		defer func() { recover() }() // as the listener does
		f.do(context.Background(), q, nil, fn)
	}()
	// Join once the leader's flight is registered.
	for {
		f.mu.Lock()
		_, running := f.calls[keyOf(q)]
		f.mu.Unlock()
		if running {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := f.do(ctx, q, nil, func(context.Context, *dns.Msg, *resolver.Info) (*dns.Msg, error) {
			return nil, errors.New("a joiner must not run the query")
		})
		errc <- err
	}()
	for {
		f.mu.Lock()
		c := f.calls[keyOf(q)]
		n := 0
		if c != nil {
			n = c.joiners
		}
		f.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(joined)
	if err := <-errc; !errors.Is(err, errPanicked) || ctx.Err() != nil {
		t.Fatalf("joiner: %v (context %v), want errPanicked at once", err, ctx.Err())
	}
	r, err := f.do(ctx, q, nil, func(context.Context, *dns.Msg, *resolver.Info) (*dns.Msg, error) {
		return new(dns.Msg).SetReply(q), nil
	})
	if err != nil || r == nil {
		t.Fatalf("the next query: %v, %v", r, err)
	}
}
