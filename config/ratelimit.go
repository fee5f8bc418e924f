package config

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/dotproxy/dotproxy/ratelimit"
)

// Bounds of max_udp_size: 512 octets is what DNS over UDP always allows
// (RFC 1035); above 4096 an answer is fragmented on any path, which is
// what the cap is there to prevent (RFC 8900), and BIND stops there too.
const (
	minUDPSize = 512
	maxUDPSize = 4096
)

// RateLimit configures response rate limiting of UDP answers (RRL): per
// client prefix, as package ratelimit does it.
type RateLimit struct {
	Enabled            ratelimit.Mode // auto: on when allow reaches beyond the private ranges
	ResponsesPerSecond int            // to one prefix, once its burst is spent
	Burst              int            // answers a prefix may receive at once
	Slip               int            // every Slip-th limited answer goes out truncated; 0: none, all dropped
	IPv4Prefix         int            // bits of an IPv4 client address that make its prefix, 1-32
	IPv6Prefix         int            // and of an IPv6 one, 1-128
	Exempt             []netip.Prefix // clients never limited; masked
}

// rateLimitFields is the schema of the rate_limit: section.
func (d *decoder) rateLimitFields(r *RateLimit) map[string]field {
	return map[string]field{
		"enabled":              value(d, &r.Enabled, "auto, true or false", ratelimit.ParseMode),
		"responses_per_second": value(d, &r.ResponsesPerSecond, "an integer", parseCount),
		"burst":                value(d, &r.Burst, "an integer", parseCount),
		"slip":                 value(d, &r.Slip, "an integer", parseSlip),
		"ipv4_prefix":          value(d, &r.IPv4Prefix, "a prefix length", parsePrefixLen(32)),
		"ipv6_prefix":          value(d, &r.IPv6Prefix, "a prefix length", parsePrefixLen(128)),
		"exempt":               values(d, &r.Exempt, "a CIDR prefix", "", parsePrefix),
	}
}

// parseUDPSize reads max_udp_size.
func parseUDPSize(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	if n < minUDPSize || n > maxUDPSize {
		return 0, fmt.Errorf("must be from %d to %d octets, got %d", minUDPSize, maxUDPSize, n)
	}
	return n, nil
}

// parseSlip reads rate_limit.slip: 0 (drop every limited answer) to 10,
// BIND's range; more would send nearly nothing a real client could use.
func parseSlip(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	if n < 0 || n > 10 {
		return 0, fmt.Errorf("must be from 0 to 10, got %d", n)
	}
	return n, nil
}

// parsePrefixLen returns a parser of prefix lengths from 1 to most.
func parsePrefixLen(most int) func(string) (int, error) {
	return func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", s)
		}
		if n < 1 || n > most {
			return 0, fmt.Errorf("must be from 1 to %d, got %d", most, n)
		}
		return n, nil
	}
}

// LimiterOptions returns the options of the ratelimit.Limiter r
// describes, and whether limiting is on for a server answering allow.
func (r *RateLimit) LimiterOptions(allow []netip.Prefix) (ratelimit.Options, bool) {
	slip := r.Slip
	if slip == 0 {
		slip = ratelimit.NoSlip
	}
	return ratelimit.Options{
		ResponsesPerSecond: r.ResponsesPerSecond,
		Burst:              r.Burst,
		Slip:               slip,
		IPv4Prefix:         r.IPv4Prefix,
		IPv6Prefix:         r.IPv6Prefix,
		Exempt:             r.Exempt,
	}, r.Enabled.Enabled(allow)
}
