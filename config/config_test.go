package config

import (
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy"
	"github.com/dotproxy/dotproxy/ratelimit"
	"github.com/dotproxy/dotproxy/upstream"
	"github.com/miekg/dns"
)

// want is the built-in default, written out: config.yaml and this must
// agree, and Default must not panic.
func want() *Config {
	up := func(name, addr, tlsName string) Upstream {
		return Upstream{Name: name, Address: netip.MustParseAddrPort(addr), TLSName: tlsName}
	}
	doh := func(name, ip, tlsName string) Upstream {
		return Upstream{Name: name, Transport: upstream.HTTPS, Address: netip.AddrPortFrom(netip.MustParseAddr(ip), 443),
			Path: "/dns-query", TLSName: tlsName, Fallback: true}
	}
	var allow []netip.Prefix
	for _, s := range []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
		"100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10"} {
		allow = append(allow, netip.MustParsePrefix(s))
	}
	return &Config{
		Listen: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53"), netip.MustParseAddrPort("[::]:53")},
		Upstreams: []Upstream{
			up("cloudflare", "1.1.1.1:853", "cloudflare-dns.com"),
			up("cloudflare-2", "1.0.0.1:853", "cloudflare-dns.com"),
			up("google", "8.8.8.8:853", "dns.google"),
			up("google-2", "8.8.4.4:853", "dns.google"),
			up("quad9", "9.9.9.9:853", "dns.quad9.net"),
			up("quad9-2", "149.112.112.112:853", "dns.quad9.net"),
			doh("cloudflare-doh", "1.1.1.1", "cloudflare-dns.com"),
			doh("google-doh", "8.8.8.8", "dns.google"),
			doh("quad9-doh", "9.9.9.9", "dns.quad9.net"),
		},
		Policy:       "fastest",
		Timeout:      1500 * time.Millisecond,
		QueryTimeout: 4 * time.Second,
		HedgeDelay:   50 * time.Millisecond,
		Connections:  Connections{MaxPerUpstream: 2, IdleTimeout: 8 * time.Second, DialTimeout: 2 * time.Second},
		Health: Health{
			Interval: 10 * time.Second, DownInterval: 2 * time.Second, Timeout: 1500 * time.Millisecond,
			Fall: 2, Rise: 1, ProbeName: ".", ProbeType: dns.TypeNS,
		},
		Allow:       allow,
		TCP:         TCP{IdleTimeout: 10 * time.Second, MaxConnections: 1000, MaxPerClient: 64, MaxInflightPerConn: 100},
		MaxUDPSize:  1232,
		MaxInflight: 2048, MaxInflightPerClient: 50,
		RateLimit: RateLimit{Enabled: ratelimit.Auto, ResponsesPerSecond: 20, Burst: 40, Slip: 2, IPv4Prefix: 24,
			IPv6Prefix: 56, Exempt: slices.Clone(allow)},
		Cache: Cache{Enabled: true, Size: 10000, MaxBytes: 32 << 20, MaxTTL: 24 * time.Hour,
			NegativeTTL: time.Hour, ServfailTTL: 5 * time.Second, Prefetch: true, ServeStale: true,
			StaleMaxAge: 24 * time.Hour},
		Filter: Filter{Blocklists: []string{}, Allowlists: []string{}, BlockResponse: "nxdomain",
			Refresh: 24 * time.Hour, CacheDir: "/var/lib/dotproxy/lists", Groups: []Group{}},
		LocalRecords: map[string][]netip.Addr{},
		Admin:        netip.MustParseAddrPort("127.0.0.1:8053"),
		AdminHosts:   []string{},
		Forward:      []Forward{},
		Rebind:       RebindProtection{Enabled: true, Allow: []string{}},
		HostsFiles:   []string{},
		QueryLog:     QueryLog{Path: "-", Anonymize: true},
		Log:          Log{Level: slog.LevelInfo, Format: "text"},
	}
}

func TestDefault(t *testing.T) {
	if got := Default(); !reflect.DeepEqual(got, want()) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", got, want())
	}
}

func TestDefaultIsACopy(t *testing.T) {
	a := Default()
	a.Listen[0] = netip.MustParseAddrPort("127.0.0.1:5353")
	a.Upstreams[0].Name = "changed"
	a.Allow[0] = netip.MustParsePrefix("0.0.0.0/0")
	if b := Default(); !reflect.DeepEqual(b, want()) {
		t.Errorf("changing one Default() changed the next: %+v", b)
	}
}

// TestParseOmittedKeys checks that every key left out keeps its default,
// in whole sections and in part of one.
func TestParseOmittedKeys(t *testing.T) {
	tests := []struct {
		name, yaml string
		change     func(c *Config) // from want() to what the file gives
	}{
		{"empty mapping", "{}\n", nil},
		{"comment and empty mapping", "# all defaults\n{}\n", nil},
		{"trailing empty document", "policy: random\n---\n", func(c *Config) { c.Policy = "random" }},
		{"null values are omitted keys", "timeout:\nhealth:\nupstreams:\n", nil},
		{"one key", "policy: ordered\n", func(c *Config) { c.Policy = "ordered" }},
		{"part of a section", "health:\n  fall: 5\n", func(c *Config) { c.Health.Fall = 5 }},
		{"tcp and log", "tcp: {max_per_client: 8}\nlog: {level: debug}\n", func(c *Config) {
			c.TCP.MaxPerClient = 8
			c.Log.Level = slog.LevelDebug
		}},
		{"every key at its default", string(dotproxy.DefaultConfig), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("config.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			w := want()
			if tt.change != nil {
				tt.change(w)
			}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("got\n%+v\nwant\n%+v", got, w)
			}
		})
	}
}
