package upstream

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestDoQExchangeUnderLoad hammers one DoQ upstream from many goroutines,
// enough to grow a second connection, while the server closes its
// connections a few times and readers take the stats: every answer is
// the query's own, a query fails only when a connection closed under it,
// and every query is accounted for.
func TestDoQExchangeUnderLoad(t *testing.T) {
	const workers, perWorker, closes = 2 * busyThreshold, 20, 3
	const total = workers * perWorker
	ca := dottest.NewCA(t)
	srv := startDoQ(t, ca, answerByIndex())
	u := newDoQUpstream(t, ca, srv, Options{MaxConns: 2})

	var finished, failed atomic.Int64
	closeAt := make(chan struct{}, closes)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				n := w*perWorker + i
				r, err := u.Exchange(ctxFor(t, testTimeout), query(indexName(n), dns.TypeA))
				switch {
				case errors.Is(err, ErrConnClosed):
					failed.Add(1)
				case err != nil:
					t.Errorf("query %d: %v", n, err)
				case len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(indexAddr(n).AsSlice()):
					t.Errorf("query %d got another's answer: %v", n, r.Answer)
				}
				if i%10 == 0 {
					_, _ = u.Stats(), u.OpenConns()
				}
				if f := finished.Add(1); f%(total/(closes+1)) == 0 && f < total {
					closeAt <- struct{}{}
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	for running := true; running; {
		select {
		case <-closeAt:
			srv.CloseConns(doqNoError)
		case <-done:
			running = false
		}
	}

	s := u.Stats()
	if s.Queries != total || s.Answers+s.Errors.Total()+s.Abandoned != total {
		t.Errorf("%d queries, %d answers, %d errors, %d abandoned; want %d accounted for",
			s.Queries, s.Answers, s.Errors.Total(), s.Abandoned, total)
	}
	// Each close fails at most the queries in flight on a connection
	// dialed for them; those on a reused one are resent.
	if f := failed.Load(); f > closes*workers {
		t.Errorf("%d of %d queries failed on closed connections", f, total)
	}
	if a := srv.Accepts(); a < 2 || a > 2*(closes+1) {
		t.Errorf("server accepted %d connections, want 2 to %d", a, 2*(closes+1))
	}
}
