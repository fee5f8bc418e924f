package resolver

import "testing"

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
		{"rebind", func(i *Info) { i.SetRebind() }, Info{Rebind: true}},
		{"several", func(i *Info) { i.SetUpstream("google"); i.SetBlocked("list") }, Info{Upstream: "google", Blocked: "list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var info Info
			tc.set(&info)
			if info != tc.want {
				t.Fatalf("got %+v, want %+v", info, tc.want)
			}
			// On a nil Info the setters do nothing.
			tc.set(nil)
		})
	}
}
