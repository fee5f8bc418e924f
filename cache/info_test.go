package cache

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// recordingUpstream answers like an upstream selector does: it records in
// the request's Info that "quad9" answered, unless down.
func recordingUpstream(down *bool) resolver.Resolver {
	up := withA(300, 1)
	return resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		if req.Inline {
			return resolver.Response{}, resolver.ErrWouldWait
		}
		if *down {
			return resolver.Response{}, &resolver.Error{Code: dns.ExtendedErrorCodeNetworkError, Text: "upstreams unreachable"}
		}
		req.Info.SetUpstream("quad9")
		return resolver.Response{Msg: up(req.Msg())}, nil
	})
}

// ask resolves q through r as a client's query and returns the
// answer's error and what the chain recorded in the request's Info.
func askInfo(ctx context.Context, r resolver.Resolver, q *dns.Msg) (resolver.Info, *dns.Msg, error) {
	req := resolver.NewRequest(q)
	resp, err := r.Resolve(ctx, req)
	if err != nil {
		return req.Info, nil, err
	}
	m, err := resp.Unpack()
	return req.Info, m, err
}

// TestInfo: each way the cache answers is recorded in the client's Info.
func TestInfo(t *testing.T) {
	var down bool
	clk := newClock()
	_, r := newCache(t, Options{Now: clk.Now, ServeStale: true}, recordingUpstream(&down))
	q := query("example.com.", dns.TypeA, true, false)
	ask := func(name string, want resolver.Info) {
		t.Helper()
		info, _, err := askInfo(context.Background(), r, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info != want {
			t.Errorf("%s: Info %+v, want %+v", name, info, want)
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
		info, _, err := askInfo(context.Background(), r, other)
		if err == nil {
			t.Fatalf("failure %d: answered", i)
		}
		if info != want {
			t.Errorf("failure %d: Info %+v, want %+v", i, info, want)
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
	up := resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		<-release
		info := &req.Info
		info.SetUpstream("late")
		got <- info
		return resolver.Response{Msg: withA(300, 1)(req.Msg())}, nil
	})
	_, r := newCache(t, Options{}, up)
	q := query("example.com.", dns.TypeA, false, false)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client gives up at once
	req := resolver.NewRequest(q)
	if _, err := r.Resolve(ctx, req); err == nil {
		t.Fatal("answered although the client gave up")
	}
	if req.Info != (resolver.Info{}) {
		t.Fatalf("Info %+v after giving up", req.Info)
	}
	close(release)
	if detached := <-got; detached == &req.Info || detached == nil {
		t.Fatalf("the detached query got Info %p, the client's is %p", detached, &req.Info)
	}

	// The next client is answered from the cache the detached query
	// filled.
	waitFor(t, "the detached answer to be cached", func() bool {
		info, m, err := askInfo(context.Background(), r, q)
		return err == nil && m.Rcode == dns.RcodeSuccess && info.Cached
	})
}
