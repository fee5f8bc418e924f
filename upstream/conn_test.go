package upstream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestPipelining: many queries share few connections, their answers come
// back out of order, and every caller gets its own.
func TestPipelining(t *testing.T) {
	const n = 200
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
		// Later queries tend to be answered first.
		i := indexOf(q.Question[0].Name)
		time.Sleep(time.Duration((n-i)%25) * time.Millisecond)
		answerByIndex()(q, reply)
	})
	u := newUpstream(t, ca, srv, Options{MaxConns: 2})
	ctx := ctxFor(t, testTimeout)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			q := query(indexName(i), dns.TypeA)
			q.Id = uint16(i)
			r, err := u.Exchange(ctx, q)
			switch {
			case err != nil:
				errs <- err
			case r.Id != uint16(i) || indexOf(r.Question[0].Name) != i:
				t.Errorf("query %d: answer has ID %d, question %v", i, r.Id, r.Question[0])
			case len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(indexAddr(i).AsSlice()):
				t.Errorf("query %d got another's answer: %v", i, r.Answer)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := srv.Accepts(); got > 2 {
		t.Errorf("server accepted %d connections, want at most MaxConns (2)", got)
	}
}

// TestConnBreakFailsInFlight: when the connection breaks, every query
// waiting on it fails at once with ErrConnClosed, long before its own
// deadline (the deadline is what bounds the test if they did not).
func TestConnBreakFailsInFlight(t *testing.T) {
	const n = 10
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, nil)
	u := newUpstream(t, ca, srv, Options{})
	// An answered query first, so that the others go out on a connection
	// that is up.
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("warm.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	srv.SetHandler(dottest.Silent())
	ctx := ctxFor(t, 30*time.Second)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := u.Exchange(ctx, query(indexName(i), dns.TypeA))
			errs <- err
		}()
	}
	waitFor(t, "the queries to reach the server", func() bool { return srv.Queries() == n+1 })
	srv.Kill()
	for range n {
		err := <-errs
		if !errors.Is(err, ErrConnClosed) {
			t.Errorf("got %v, want an error wrapping ErrConnClosed", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("query waited for its deadline: %v", err)
		}
	}
}

// TestStalledConnClosed: a resolver that keeps its connection open but
// answers nothing has the connection closed as stalled once several
// queries were given up on it, which fails what still waits on it, and
// Failed signals.
func TestStalledConnClosed(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, dottest.Silent())
	u := newUpstream(t, ca, srv, Options{MaxConns: 1})
	c, _, err := u.carrier.(*pool).get(ctxFor(t, testTimeout))
	if err != nil {
		t.Fatal(err)
	}

	waiting := make(chan error, 1)
	go func() {
		_, err := u.Exchange(ctxFor(t, 30*time.Second), query("waiting.example.", dns.TypeA))
		waiting <- err
	}()
	waitFor(t, "the waiting query to reach the server", func() bool { return srv.Queries() == 1 })

	// Short queries are abandoned one after another until the connection
	// is taken for stalled; the waiting query's 30 s bounds the loop.
	abandoned := 0
	for ; c.alive(); abandoned++ {
		if abandoned > 300 {
			t.Fatal("the connection was never taken for stalled")
		}
		_, err := u.Exchange(ctxFor(t, 100*time.Millisecond), query(indexName(abandoned), dns.TypeA))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("abandoned query %d: got %v, want its deadline", abandoned, err)
		}
	}
	if abandoned < unansweredLimit {
		t.Errorf("stalled after %d abandoned queries, want at least %d", abandoned, unansweredLimit)
	}
	if n := u.OpenConns(); n != 0 {
		t.Errorf("%d connections open after the stall", n)
	}
	if err := <-waiting; !errors.Is(err, ErrStalled) {
		t.Errorf("waiting query: got %v, want ErrStalled", err)
	}
	select {
	case <-u.Failed():
	default:
		t.Error("Failed did not signal")
	}
}

// TestIdleConnNotStalled: queries given up soon after a connection wakes
// from idleness (another upstream answered first) do not make it look
// stalled: the time it sat idle with nothing asked is not time it failed
// to answer.
func TestIdleConnNotStalled(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
		if q.Question[0].Name == "wanted.example." {
			dottest.Delay(200*time.Millisecond, dottest.Answer("192.0.2.1"))(q, reply)
		}
		// The others go unanswered for as long as the test runs.
	})
	u := newUpstream(t, ca, srv, Options{})
	c, _, err := u.carrier.(*pool).get(ctxFor(t, testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	// The connection has been idle for a long while.
	c.mu.Lock()
	c.quietSince = time.Now().Add(-time.Hour)
	c.mu.Unlock()

	wanted := make(chan error, 1)
	go func() {
		_, err := u.Exchange(ctxFor(t, testTimeout), query("wanted.example.", dns.TypeA))
		wanted <- err
	}()
	waitFor(t, "the wanted query to reach the server", func() bool { return srv.Queries() == 1 })
	for i := range unansweredLimit + 1 {
		ctx, cancel := context.WithCancel(context.Background())
		abandoned := make(chan error, 1)
		go func() {
			_, err := u.Exchange(ctx, query(indexName(i), dns.TypeA))
			abandoned <- err
		}()
		// Given up as soon as the server has it, as a hedged attempt is
		// when another upstream wins.
		waitFor(t, "the query to reach the server", func() bool { return srv.Queries() == int64(i+2) })
		cancel()
		if err := <-abandoned; !errors.Is(err, context.Canceled) {
			t.Fatalf("abandoned query %d: %v", i, err)
		}
	}
	if err := <-wanted; err != nil {
		t.Errorf("the wanted query failed: %v", err)
	}
}
