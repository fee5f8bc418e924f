package upstream

import (
	"context"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// TestH2WireHammer: many queries at once against a server that frames
// each answer its own random way (split headers and bodies, padding,
// trailers, 103s, answers overtaking each other), with a small window and
// few streams, and that changes its settings and PINGs the client
// mid-run: every query is answered, each with its own answer, no rule is
// broken, all within a bound.
func TestH2WireHammer(t *testing.T) {
	const (
		queries = 500
		par     = 32
		bound   = 10 * time.Second
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ca := dottest.NewCA(t)
	srv := startH2Raw(t, ca, dottest.H2RawOptions{
		Settings: []http2.Setting{
			{ID: http2.SettingInitialWindowSize, Val: 64},
			{ID: http2.SettingMaxConcurrentStreams, Val: 10},
		},
		Behavior: dottest.H2RawBehavior{Random: true, Seed: seed},
	})
	u := newH2Upstream(t, ca, srv, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()

	// Meddle while the queries run: settings change back and forth, and
	// the server PINGs, a bounded number of times.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		alt := [][]http2.Setting{
			{{ID: http2.SettingInitialWindowSize, Val: 16}, {ID: http2.SettingMaxConcurrentStreams, Val: 3}},
			{{ID: http2.SettingInitialWindowSize, Val: 1000}, {ID: http2.SettingMaxConcurrentStreams, Val: 20}},
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 100; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			srv.UpdateSettings(alt[i%2]...)
			srv.Ping()
		}
	})
	start := time.Now()
	errs := exchangeAll(ctx, u, 0, queries, par)
	close(stop)
	wg.Wait()
	t.Logf("%d queries in %v over %d connections, %d answers reordered", queries,
		time.Since(start).Round(time.Millisecond), srv.Accepts(), srv.Reordered())
	wantAllAnswered(t, errs)
	wantNoViolations(t, srv)
	if n := srv.Answered(); n != queries {
		t.Errorf("server answered %d requests, want %d", n, queries)
	}
}
