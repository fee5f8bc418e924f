package proxy

import (
	"net/netip"
	"testing"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/upstream"
)

// TestReloadRebuildsChangedUpstream: a reload keeps an upstream whose
// configuration is the same in every field, and rebuilds one that
// changed in any, the transport, path, host, fallback and bootstrap
// included.
func TestReloadRebuildsChangedUpstream(t *testing.T) {
	base := config.Upstream{Name: "a", Transport: upstream.HTTPS, Host: "dns.test", Port: 443, Path: "/dns-query",
		TLSName: "dns.test", Bootstrap: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	u, err := upstream.New(upstream.Options{Name: "a", Addr: netip.MustParseAddrPort("192.0.2.1:853"), TLSName: "dns.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	cfg := config.Default()
	cfg.Upstreams = []config.Upstream{base}
	prev := &generation{cfg: cfg, ups: []*upstream.Upstream{u}}
	for _, tc := range []struct {
		name   string
		change func(*config.Upstream)
		kept   bool
	}{
		{"unchanged", func(*config.Upstream) {}, true},
		{"same bootstrap, another slice", func(c *config.Upstream) { c.Bootstrap = []netip.Addr{netip.MustParseAddr("192.0.2.1")} }, true},
		{"transport", func(c *config.Upstream) { c.Transport = upstream.HTTP3 }, false},
		{"path", func(c *config.Upstream) { c.Path = "/resolve" }, false},
		{"host", func(c *config.Upstream) { c.Host = "doh.test" }, false},
		{"port", func(c *config.Upstream) { c.Port = 8443 }, false},
		{"IP instead of host", func(c *config.Upstream) {
			c.Host, c.Port, c.Bootstrap = "", 0, nil
			c.Address = netip.MustParseAddrPort("192.0.2.1:443")
		}, false},
		{"fallback", func(c *config.Upstream) { c.Fallback = true }, false},
		{"bootstrap", func(c *config.Upstream) { c.Bootstrap = append(c.Bootstrap, netip.MustParseAddr("2001:db8::1")) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uc := base
			uc.Bootstrap = append([]netip.Addr(nil), base.Bootstrap...)
			tc.change(&uc)
			next := config.Default()
			next.Upstreams = []config.Upstream{uc}
			if got := prev.upstream(uc, next); (got == u) != tc.kept {
				t.Errorf("kept: %v, want %v", got == u, tc.kept)
			}
		})
	}
}
