package proxy

import (
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/upstream"
)

// TestCheckJudgesStartup: every configuration that start-up (New)
// refuses is a configuration error that config.Parse, and so -check,
// reports with its file, line and key. Each case gives the file's text
// and the same change made to a Config directly, past the checks, to
// show that start-up does refuse it.
func TestCheckJudgesStartup(t *testing.T) {
	missingDir := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name   string
		yaml   string
		change func(*config.Config)
		want   string // file:line: key
	}{
		{"group without a name", "filter:\n  groups:\n    - clients: [10.0.0.0/8]\n",
			func(c *config.Config) {
				c.Filter.Groups = []config.Group{{Clients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
			}, "config.yaml:3: filter.groups[0].name"},
		{"group name twice", "filter:\n  groups:\n    - {name: kids, clients: [10.0.0.0/8]}\n    - {name: kids, clients: [10.1.0.0/16]}\n",
			func(c *config.Config) {
				c.Filter.Groups = []config.Group{
					{Name: "kids", Clients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
					{Name: "kids", Clients: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
				}
			}, "config.yaml:4: filter.groups[1].name"},
		{"list of another scheme", "filter:\n  blocklists: [\"ftp://lists.example/ads.txt\"]\n",
			func(c *config.Config) { c.Filter.Blocklists = []string{"ftp://lists.example/ads.txt"} },
			"config.yaml:2: filter.blocklists[0]"},
		{"list URL without a host", "filter:\n  allowlists: [\"https:///ads.txt\"]\n",
			func(c *config.Config) { c.Filter.Allowlists = []string{"https:///ads.txt"} },
			"config.yaml:2: filter.allowlists[0]"},
		{"group list of another scheme", "filter:\n  groups:\n    - name: tv\n      clients: [10.0.0.0/8]\n      blocklists: [\"file:///etc/hosts\"]\n",
			func(c *config.Config) {
				c.Filter.Groups = []config.Group{{Name: "tv", Clients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
					Blocklists: []string{"file:///etc/hosts"}}}
			}, "config.yaml:5: filter.groups[0].blocklists[0]"},
		{"local record with a numeric top label", "local_records:\n  nas.123: [192.168.1.2]\n",
			func(c *config.Config) {
				c.LocalRecords = map[string][]netip.Addr{"nas.123": {netip.MustParseAddr("192.168.1.2")}}
			}, "config.yaml:2: local_records[nas.123]"},
		{"host name with no way to look it up", "upstreams:\n  - {name: a, address: 'tls://dns.test'}\n",
			func(c *config.Config) {
				c.Upstreams = []config.Upstream{{Name: "a", Host: "dns.test", Port: 853, TLSName: "dns.test"}}
			}, "config.yaml:2: upstreams[0].address"},
		{"single-label host name without router:", "upstreams:\n  - {name: a, address: 'https://pihole/dns-query'}\n  - {name: b, address: 192.0.2.53, tls_name: dns.test}\n",
			func(c *config.Config) {
				c.Upstreams = []config.Upstream{
					{Name: "a", Transport: upstream.HTTPS, Host: "pihole", Port: 443, Path: "/dns-query", TLSName: "pihole"},
					{Name: "b", Address: netip.MustParseAddrPort("192.0.2.53:853"), TLSName: "dns.test"},
				}
			}, "config.yaml:2: upstreams[0].address"},
		{"home.arpa host name without a forward rule", "upstreams:\n  - {name: a, address: 'tls://dns.home.arpa'}\n  - {name: b, address: 192.0.2.53, tls_name: dns.test}\n",
			func(c *config.Config) {
				c.Upstreams = []config.Upstream{
					{Name: "a", Host: "dns.home.arpa", Port: 853, TLSName: "dns.home.arpa"},
					{Name: "b", Address: netip.MustParseAddrPort("192.0.2.53:853"), TLSName: "dns.test"},
				}
			}, "config.yaml:2: upstreams[0].address"},
		{"query log in a missing directory", "query_log:\n  enabled: true\n  path: " + missingDir + "/q.log\n",
			func(c *config.Config) { c.QueryLog.Enabled, c.QueryLog.Path = true, missingDir+"/q.log" },
			"config.yaml:3: query_log.path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
			cfg.Admin = netip.AddrPort{}
			cfg.Filter.CacheDir = t.TempDir()
			tc.change(cfg)
			p, startErr := New(cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
			if startErr == nil {
				p.Shutdown(t.Context())
				t.Fatal("start-up accepts the configuration: the case tests nothing")
			}
			_, err := config.Parse("config.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v; want a problem at %q (start-up says: %v)", err, tc.want, startErr)
			}
		})
	}
}

// TestDefaultBuilds: the built-in configuration, its DNS-over-HTTPS
// fallbacks included, builds (nothing dials before Start).
func TestDefaultBuilds(t *testing.T) {
	cfg := config.Default()
	cfg.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
	cfg.Admin = netip.AddrPort{}
	cfg.Filter.CacheDir = t.TempDir()
	p, err := New(cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	transports := map[string]int{}
	for _, u := range p.gen.Load().ups {
		transports[u.Transport().String()]++
	}
	if transports["tls"] != 6 || transports["https"] != 3 {
		t.Errorf("transports %v, want 6 tls and 3 https", transports)
	}
}
