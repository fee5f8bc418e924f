package cache

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// recordingUpstream answers like an upstream selector does: it records in
// the context's Info that "quad9" answered, unless down.
func recordingUpstream(down *bool) resolver.Resolver {
	up := withA(300, 1)
	return resolver.Func(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		if *down {
			return nil, &resolver.Error{Code: dns.ExtendedErrorCodeNetworkError, Text: "upstreams unreachable"}
		}
		resolver.InfoFrom(ctx).SetUpstream("quad9")
		return up(q), nil
	})
}

// TestInfo: each way the cache answers is recorded in the client's Info.
func TestInfo(t *testing.T) {
	var down bool
	clk := newClock()
	_, r := newCache(t, Options{Now: clk.Now, ServeStale: true}, recordingUpstream(&down))
	q := query("example.com.", dns.TypeA, true, false)
	ask := func(name string, want resolver.Info) {
		t.Helper()
		ctx, info := resolver.WithInfo(context.Background())
		if _, err := r.Resolve(ctx, q); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if *info != want {
			t.Errorf("%s: Info %+v, want %+v", name, *info, want)
		}
	}
	ask("miss", resolver.Info{Upstream: "quad9"})
	ask("hit", resolver.Info{Cached: true})
	down = true
	clk.advance(time.Hour)
	ask("stale", resolver.Info{Cached: true, Stale: true})

	// A remembered failure of another name, answered from the cache.
	other := query("other.example.", dns.TypeA, true, false)
	for i, want := range []resolver.Info{{}, {Cached: true}} {
		ctx, info := resolver.WithInfo(context.Background())
		if _, err := r.Resolve(ctx, other); err == nil {
			t.Fatalf("failure %d: answered", i)
		}
		if *info != want {
			t.Errorf("failure %d: Info %+v, want %+v", i, *info, want)
		}
	}
}

// TestInfoNotSharedWithDetachedQuery: the upstream query of a miss
// outlives the client that started it, so it must not write to that
// client's Info. Here it writes after the client has given up and read
// its Info; the race detector would catch a shared one.
func TestInfoNotSharedWithDetachedQuery(t *testing.T) {
	release := make(chan struct{})
	got := make(chan *resolver.Info, 1)
	up := resolver.Func(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		<-release
		info := resolver.InfoFrom(ctx)
		info.SetUpstream("late")
		got <- info
		return withA(300, 1)(q), nil
	})
	_, r := newCache(t, Options{}, up)
	q := query("example.com.", dns.TypeA, false, false)

	ctx, cancel := context.WithCancel(context.Background())
	ctx, info := resolver.WithInfo(ctx)
	cancel() // the client gives up at once
	if _, err := r.Resolve(ctx, q); err == nil {
		t.Fatal("answered although the client gave up")
	}
	if *info != (resolver.Info{}) {
		t.Fatalf("Info %+v after giving up", *info)
	}
	close(release)
	if detached := <-got; detached == info || detached == nil {
		t.Fatalf("the detached query got Info %p, the client's is %p", detached, info)
	}

	// The next client is answered from the cache the detached query
	// filled.
	ctx, info = resolver.WithInfo(context.Background())
	waitFor(t, "the detached answer to be cached", func() bool {
		*info = resolver.Info{}
		m, err := r.Resolve(ctx, q)
		return err == nil && m.Rcode == dns.RcodeSuccess && info.Cached
	})
}
