package filter

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

func TestListName(t *testing.T) {
	for source, want := range map[string]string{
		"/etc/dotproxy/ads.txt":                           "/etc/dotproxy/ads.txt",
		"https://lists.example/ads.txt":                   "https://lists.example/ads.txt",
		"https://lists.example:8443/a/b.txt?token=s3cret": "https://lists.example:8443/a/b.txt",
		"https://user:s3cret@lists.example/ads.txt":       "https://lists.example/ads.txt",
		"http://lists.example/ads.txt#s3cret":             "http://lists.example/ads.txt",
		"https://lists.example/a%2Fb.txt?key=s3cret":      "https://lists.example/a%2Fb.txt",
		"https://[::1]:8080/list":                         "https://[::1]:8080/list",
		"http://%zz/?token=s3cret":                        "(unparsable URL)",
	} {
		if got := ListName(source); got != want {
			t.Errorf("ListName(%q) = %q, want %q", source, got, want)
		}
	}
}

// TestInfo: what the filter does to a query is recorded in its Info, the
// blocking list by its shown name, never with the URL's token.
func TestInfo(t *testing.T) {
	srv := newListServer(t, "ads.example.com\n")
	dir := t.TempDir()
	listURL := srv.URL + "/ads.txt?token=s3cret"
	f, _ := newFilter(t, Options{
		Blocklists:   []string{listURL, writeFile(t, dir, "block.txt", "tracker.example.net\n")},
		LocalRecords: map[string][]netip.Addr{"nas.home.arpa": {netip.MustParseAddr("192.168.1.2")}},
	})
	f.refreshAll(context.Background())
	for _, tc := range []struct {
		name  string
		chain []string // the upstream's CNAME chain
		want  resolver.Info
	}{
		{name: "www.example.com", want: resolver.Info{Upstream: "fake"}},
		{name: "ads.example.com", want: resolver.Info{Blocked: srv.URL + "/ads.txt"}},
		{name: "x.tracker.example.net", want: resolver.Info{Blocked: filepath.Join(dir, "block.txt")}},
		{name: "cloaked.example.com", chain: []string{"tracker.example.net"},
			want: resolver.Info{Upstream: "fake", Blocked: filepath.Join(dir, "block.txt")}},
		{name: "nas.home.arpa", want: resolver.Info{Local: true}},
		{name: "printer.local", want: resolver.Info{Local: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{answer: cnameChain(tc.chain...)}
			named := resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
				req.Info.SetUpstream("fake")
				return up.Resolve(ctx, req)
			})
			req := resolver.NewRequest(new(dns.Msg).SetQuestion(dns.Fqdn(tc.name), dns.TypeA))
			if _, err := f.Middleware()(named).Resolve(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if req.Info != tc.want {
				t.Errorf("Info %+v, want %+v", req.Info, tc.want)
			}
		})
	}
	for _, l := range f.Stats().Lists {
		if strings.Contains(l.Name, "s3cret") || l.Name != ListName(l.Source) {
			t.Errorf("list %q shown as %q", l.Source, l.Name)
		}
	}
}
