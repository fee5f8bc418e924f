package upstream

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestSelectorUnderLoad hammers a Selector from many goroutines while one
// of its upstreams crashes and comes back: every query is answered, with
// its own answer.
func TestSelectorUnderLoad(t *testing.T) {
	const workers, perWorker = 50, 50
	const total = workers * perWorker
	ca := dottest.NewCA(t)
	var (
		srvs []*dottest.Server
		ups  []*Upstream
	)
	for range 3 {
		srv := startServer(t, ca, answerByIndex())
		srvs = append(srvs, srv)
		ups = append(ups, newUpstream(t, ca, srv, Options{}))
	}
	// round_robin, so that the crashing upstream is first for a third of
	// the queries.
	s := newSelector(t, SelectorOptions{Policy: &roundRobin{}}, ups...)

	var finished atomic.Int64
	killAt, restartAt := make(chan struct{}), make(chan struct{})
	var killOnce, restartOnce sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				n := w*perWorker + i
				q := query(indexName(n), dns.TypeA)
				r, err := resolve(s, ctxFor(t, testTimeout), q)
				switch {
				case err != nil:
					t.Errorf("query %d lost: %v", n, err)
				case len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(indexAddr(n).AsSlice()):
					t.Errorf("query %d got another's answer: %v", n, r.Answer)
				}
				switch finished.Add(1) {
				case total / 3:
					killOnce.Do(func() { close(killAt) })
				case 2 * total / 3:
					restartOnce.Do(func() { close(restartAt) })
				}
			}
		})
	}
	<-killAt
	srvs[0].Kill()
	<-restartAt
	srvs[0].Restart()
	// A probe, as the health checker sends when Failed signals: the
	// upstream reconnects to the restarted resolver, and its failure
	// streak, which keeps it last in every policy's order, ends.
	if _, err := ups[0].Exchange(ctxFor(t, testTimeout), query("probe.test.", dns.TypeNS)); err != nil {
		t.Errorf("probe after the restart: %v", err)
	}
	if tr := ups[0].Standing(time.Now()).tier(); tr != 0 {
		t.Errorf("restarted upstream still in tier %d after a good probe", tr)
	}
	wg.Wait()
}
