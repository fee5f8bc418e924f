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
// broken, all within a bound. Warm: one connection that has applied the
// first settings, which then only grow. Cold: new connections, and
// settings that shrink and grow under load.
func TestH2WireHammer(t *testing.T) {
	const (
		queries = 500
		par     = 32
		bound   = 10 * time.Second
	)
	for _, warm := range []bool{true, false} {
		t.Run(map[bool]string{true: "warm, growing settings", false: "cold, settings shrinking and growing"}[warm], func(t *testing.T) {
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
			opts, want := Options{}, int64(queries)
			if warm {
				opts.MaxConns = 1
			}
			u := newH2Upstream(t, ca, srv, opts)
			if warm {
				warmUp(t, u, srv)
				want++
			}
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { meddle(srv, warm, stop) })
			start := time.Now()
			errs := exchangeAll(ctx, u, 0, queries, par)
			close(stop)
			wg.Wait()
			t.Logf("%d queries in %v over %d connections, %d answers reordered, %d SETTINGS and %d PINGs ACKed",
				queries, time.Since(start).Round(time.Millisecond), srv.Accepts(), srv.Reordered(),
				srv.SettingsAcks(), srv.PingAcks())
			wantAllAnswered(t, errs)
			wantNoViolations(t, srv)
			if n := srv.Answered(); n != want {
				t.Errorf("server answered %d requests, want %d", n, want)
			}
		})
	}
}

// meddle changes the server's settings and PINGs the client every few
// milliseconds until stop, at most 100 times: growing the window and
// the stream limit step by step, or, unless grow, shrinking and growing
// them in turn.
func meddle(srv *dottest.H2RawServer, grow bool, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range uint32(100) {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		window, streams := 64+16*(i+1), 10+i+1
		if !grow {
			window, streams = []uint32{16, 1000}[i%2], []uint32{3, 20}[i%2]
		}
		srv.UpdateSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window},
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: streams})
		srv.Ping()
	}
}
