package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseFeatures decodes the cache, filter and local_records sections.
func TestParseFeatures(t *testing.T) {
	const yaml = `cache:
  enabled: false
  size: 500
  max_memory: 8MiB
  min_ttl: 30s
  negative_ttl: 10m
  serve_stale: no
filter:
  blocklists: [/etc/dotproxy/ads.txt, "https://lists.test/hosts.txt"]
  allowlists: [/etc/dotproxy/allow.txt]
  block_response: null_ip
  refresh: 6h
  cache_dir: /tmp/lists
  groups:
    - name: kids
      clients: ["192.168.1.128/25", Kids-Tablet.lan., "fd00:1::/64", desktop_7]
      blocklists: [/etc/dotproxy/kids.txt]
local_records:
  nas.home.arpa: ["192.168.1.10", "fd00::10"]
  Printer.Home.Arpa.: ["192.168.1.20"]
`
	c, err := Parse("config.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	w := want()
	w.Cache.Enabled, w.Cache.Size, w.Cache.MaxBytes = false, 500, 8<<20
	w.Cache.MinTTL, w.Cache.NegativeTTL, w.Cache.ServeStale = 30*time.Second, 10*time.Minute, false
	w.Filter = Filter{
		Blocklists:    []string{"/etc/dotproxy/ads.txt", "https://lists.test/hosts.txt"},
		Allowlists:    []string{"/etc/dotproxy/allow.txt"},
		BlockResponse: "null_ip",
		Refresh:       6 * time.Hour,
		CacheDir:      "/tmp/lists",
		Groups: []Group{{Name: "kids",
			Clients:    []netip.Prefix{netip.MustParsePrefix("192.168.1.128/25"), netip.MustParsePrefix("fd00:1::/64")},
			Names:      []string{"kids-tablet.lan", "desktop_7"},
			Blocklists: []string{"/etc/dotproxy/kids.txt"}}},
	}
	w.LocalRecords = map[string][]netip.Addr{
		"nas.home.arpa":     {netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("fd00::10")},
		"printer.home.arpa": {netip.MustParseAddr("192.168.1.20")},
	}
	if !reflect.DeepEqual(c, w) {
		t.Errorf("got\n%+v\nwant\n%+v", c, w)
	}
}

func TestParseFeatureErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"cache unknown key", "cache:\n  sise: 5\n", []string{"config.yaml:2: cache.sise: unknown key"}},
		{"cache bad bool", "cache:\n  prefetch: maybe\n", []string{`config.yaml:2: cache.prefetch: "maybe" is not true or false`}},
		{"cache bad size", "cache:\n  max_memory: lots\n", []string{`config.yaml:2: cache.max_memory: "lots" is not a size`}},
		{"block response", "filter:\n  block_response: drop\n", []string{`config.yaml:2: filter.block_response: "drop"`}},
		{"group without clients", "filter:\n  groups:\n    - name: tv\n", []string{"config.yaml:3: filter.groups[0].clients: required"}},
		{"group bad prefix", "filter:\n  groups:\n    - name: tv\n      clients: [192.168.1.0/33]\n", []string{`config.yaml:4: filter.groups[0].clients[0]: "192.168.1.0/33" is not a CIDR prefix, an IP address or a client name`}},
		{"group bad address", "filter:\n  groups:\n    - name: tv\n      clients: [192.168.1.300]\n", []string{`config.yaml:4: filter.groups[0].clients[0]: "192.168.1.300" is not`}},
		{"group bad name", "filter:\n  groups:\n    - name: tv\n      clients:\n        - tv\n        - \"kids tablet\"\n", []string{`config.yaml:6: filter.groups[0].clients[1]: "kids tablet" is not`}},
		{"local record not a name", "local_records:\n  \"bad name\": [192.0.2.1]\n", []string{`config.yaml:2: local_records[bad name]: "bad name" is not a host name`}},
		{"local record bad address", "local_records:\n  nas.home.arpa: [192.0.2.300]\n", []string{`config.yaml:2: local_records[nas.home.arpa][0]: "192.0.2.300"`}},
		{"local record empty", "local_records:\n  nas.home.arpa: []\n", []string{"config.yaml:2: local_records[nas.home.arpa]: empty list"}},
		{"local records a list", "local_records: [a]\n", []string{"config.yaml:1: local_records: expected a mapping of names to address lists, got a list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d problems:\n%v\nwant %d", len(lines), err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d: %q, want it to start with %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"1024": 1024, "32MiB": 32 << 20, "64 MB": 64e6, "1GiB": 1 << 30, "10KB": 10000, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "MiB", "1.5MiB", "2TiB", "99999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestParseOperations(t *testing.T) {
	c, err := Parse("config.yaml", []byte("admin: \"\"\nwatch: true\nquery_log: {enabled: true, path: /var/log/dns.jsonl, anonymize: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.IsValid() || !c.Watch || c.QueryLog != (QueryLog{Enabled: true, Path: "/var/log/dns.jsonl"}) {
		t.Errorf("got admin %v, watch %v, query_log %+v", c.Admin, c.Watch, c.QueryLog)
	}
	c, err = Parse("config.yaml", []byte("admin: \"[::1]:9053\"\n"))
	if err != nil || c.Admin != netip.MustParseAddrPort("[::1]:9053") {
		t.Errorf("admin on ::1: %v, %v", c.Admin, err)
	}
	if _, err := Parse("config.yaml", []byte("admin: localhost:8053\n")); err == nil ||
		!strings.HasPrefix(err.Error(), `config.yaml:1: admin: "localhost:8053" is not an address:port`) {
		t.Errorf("admin host name: %v", err)
	}
}

// TestStartupChecks: what start-up would refuse is a problem here, with
// its line and key, reported once.
func TestStartupChecks(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"group without a name", "filter:\n  groups:\n    - clients: [10.0.0.0/8]\n", "config.yaml:3: filter.groups[0].name: required"},
		{"list scheme", "filter:\n  blocklists: [\"gopher://x/y\"]\n", "config.yaml:2: filter.blocklists[0]: \"gopher://x/y\": want a file path or an http(s) URL with a host"},
		{"numeric top label", "local_records:\n  printer.42: [192.0.2.1]\n", "config.yaml:2: local_records[printer.42]: \"printer.42\" is not a host name"},
		{"query log is a directory", "query_log: {enabled: true, path: \"" + t.TempDir() + "\"}\n", "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("config.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want %q", err, tc.want)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Fatalf("%d problems, want 1:\n%v", n, err)
			}
		})
	}
	// A group that is not a mapping is reported as such, not also as
	// nameless.
	_, err := Parse("config.yaml", []byte("filter:\n  groups: [kids]\n"))
	if err == nil || strings.Contains(err.Error(), "name") {
		t.Fatalf("Parse: %v", err)
	}
}
