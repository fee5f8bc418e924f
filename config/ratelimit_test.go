package config

import (
	"net/netip"
	"testing"

	"github.com/dotproxy/dotproxy/ratelimit"
)

func TestRateLimitErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"udp size too small", "max_udp_size: 511\n", []string{"config.yaml:1: max_udp_size: must be from 512 to 4096 octets, got 511"}},
		{"udp size too large", "max_udp_size: 65535\n", []string{"config.yaml:1: max_udp_size: must be from 512 to 4096 octets, got 65535"}},
		{"udp size not a number", "max_udp_size: big\n", []string{`config.yaml:1: max_udp_size: "big" is not an integer`}},
		{"bad section", "rate_limit:\n  enabled: sometimes\n  responses_per_second: 0\n  burst: -1\n  slip: 11\n" +
			"  ipv4_prefix: 33\n  ipv6_prefix: 0\n  exempt: [10.0.0.0/33]\n  window: 15s\n", []string{
			`config.yaml:2: rate_limit.enabled: "sometimes" is not auto, true or false`,
			"config.yaml:3: rate_limit.responses_per_second: must be at least 1, got 0",
			"config.yaml:4: rate_limit.burst: must be at least 1, got -1",
			"config.yaml:5: rate_limit.slip: must be from 0 to 10, got 11",
			"config.yaml:6: rate_limit.ipv4_prefix: must be from 1 to 32, got 33",
			"config.yaml:7: rate_limit.ipv6_prefix: must be from 1 to 128, got 0",
			`config.yaml:8: rate_limit.exempt[0]: "10.0.0.0/33" is not a CIDR prefix`,
			"config.yaml:9: rate_limit.window: unknown key",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("config.yaml", []byte(tt.yaml))
			if c != nil {
				t.Errorf("got a *Config with the error")
			}
			sameLines(t, problemLines(t, err), tt.want)
		})
	}
}

// TestRateLimitOptions: the section becomes a Limiter's options, slip 0
// dropping every limited answer, and auto is on exactly when allow
// reaches beyond the private ranges.
func TestRateLimitOptions(t *testing.T) {
	c, err := Parse("config.yaml", []byte("max_udp_size: 1400\nrate_limit: {responses_per_second: 5, burst: 10, slip: 0, ipv4_prefix: 32, exempt: []}\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts, on := c.RateLimit.LimiterOptions(c.Allow)
	want := ratelimit.Options{ResponsesPerSecond: 5, Burst: 10, Slip: ratelimit.NoSlip, IPv4Prefix: 32, IPv6Prefix: 56, Exempt: []netip.Prefix{}}
	if on || c.MaxUDPSize != 1400 || opts.ResponsesPerSecond != want.ResponsesPerSecond || opts.Burst != want.Burst ||
		opts.Slip != want.Slip || opts.IPv4Prefix != want.IPv4Prefix || opts.IPv6Prefix != want.IPv6Prefix || len(opts.Exempt) != 0 {
		t.Errorf("got %+v, on %v, max_udp_size %d; want %+v, off with the default allow list, 1400", opts, on, c.MaxUDPSize, want)
	}
	if _, err := ratelimit.New(opts); err != nil {
		t.Errorf("the options do not make a Limiter: %v", err)
	}

	for _, tt := range []struct {
		yaml string
		on   bool
	}{
		{"allow: [0.0.0.0/0, \"::/0\"]\n", true},
		{"allow: [192.168.1.0/24, 203.0.113.0/24]\n", true},
		{"allow: [192.168.1.0/24]\n", false},
		{"allow: [0.0.0.0/0]\nrate_limit: {enabled: false}\n", false},
		{"allow: [127.0.0.1]\nrate_limit: {enabled: true}\n", true},
	} {
		c, err := Parse("config.yaml", []byte(tt.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if _, on := c.RateLimit.LimiterOptions(c.Allow); on != tt.on {
			t.Errorf("%q: limiting %v, want %v", tt.yaml, on, tt.on)
		}
	}
}
