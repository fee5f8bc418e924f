package resolver

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestInfoSetters(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Info)
		want Info
	}{
		{"upstream", func(i *Info) { i.SetUpstream("quad9") }, Info{Upstream: "quad9"}},
		{"cached", func(i *Info) { i.SetCached(false) }, Info{Cached: true}},
		{"stale", func(i *Info) { i.SetCached(true) }, Info{Cached: true, Stale: true}},
		{"blocked", func(i *Info) { i.SetBlocked("ads.txt") }, Info{Blocked: "ads.txt"}},
		{"local", func(i *Info) { i.SetLocal() }, Info{Local: true}},
		{"several", func(i *Info) { i.SetUpstream("google"); i.SetBlocked("list") }, Info{Upstream: "google", Blocked: "list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, info := WithInfo(context.Background())
			tc.set(InfoFrom(ctx))
			if *info != tc.want {
				t.Fatalf("got %+v, want %+v", *info, tc.want)
			}
			// Without an Info in the context, the setters do nothing.
			tc.set(InfoFrom(context.Background()))
		})
	}
}

func TestInfoContext(t *testing.T) {
	if InfoFrom(context.Background()) != nil {
		t.Fatal("InfoFrom of a context without Info is not nil")
	}
	base := WithClient(context.Background(), netip.MustParseAddr("192.168.1.20"))
	ctx, outer := WithInfo(base)

	t.Run("seen through derived contexts", func(t *testing.T) {
		child, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if InfoFrom(child) != outer {
			t.Fatal("a derived context does not carry the Info")
		}
		if c, ok := ClientFrom(child); !ok || c != netip.MustParseAddr("192.168.1.20") {
			t.Fatalf("the client is lost under the Info: %v, %v", c, ok)
		}
	})
	t.Run("inner hides outer", func(t *testing.T) {
		inner, info := WithInfo(ctx)
		InfoFrom(inner).SetUpstream("detached")
		if info == outer || outer.Upstream != "" || info.Upstream != "detached" {
			t.Fatalf("outer %+v, inner %+v: the detached work wrote the client's Info", *outer, *info)
		}
	})
	t.Run("cancellation passes through", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		withInfo, _ := WithInfo(parent)
		child, cancelChild := context.WithCancel(withInfo)
		defer cancelChild()
		cancel()
		<-child.Done() // a hang here fails the test by its timeout
		if withInfo.Err() == nil {
			t.Fatal("the Info's context is not cancelled with its parent")
		}
	})
}

// TestWithInfoAllocs holds WithInfo to one allocation: it runs once per
// client query when a query observer is set.
func TestWithInfoAllocs(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, info := WithInfo(ctx)
		info.SetUpstream("x")
		_ = InfoFrom(c)
	})
	if allocs > 1 {
		t.Fatalf("WithInfo: %v allocations, want 1", allocs)
	}
}
