package ratelimit

import (
	"errors"
	"fmt"
	"net/netip"
)

// errBadMode is ParseMode's error.
var errBadMode = errors.New("not auto, true or false")

// Mode is the rate_limit.enabled setting: whether a Limiter is used.
type Mode int

const (
	// Auto limits when the allow list reaches beyond Private (see
	// Enabled).
	Auto Mode = iota
	// On limits whatever the allow list.
	On
	// Off never limits.
	Off
)

// ParseMode reads "auto", "true" or "false" (and YAML's other words for
// true and false).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto":
		return Auto, nil
	case "true", "yes", "on":
		return On, nil
	case "false", "no", "off":
		return Off, nil
	}
	return Auto, fmt.Errorf("%q is %w", s, errBadMode)
}

// String is m as the configuration writes it.
func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case On:
		return "true"
	case Off:
		return "false"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Private is loopback and the private and link-local ranges: the
// clients of a home network, the default exempt list, and what an allow
// list may hold without turning Auto on. Forged sources in them cannot
// reach dotproxy from outside the house.
var Private = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// Enabled reports whether limiting is on under mode m for a server that
// answers the clients in allow: Auto turns it on when allow holds any
// address beyond Private, which is when a forged source can make it
// answer someone on the internet.
func (m Mode) Enabled(allow []netip.Prefix) bool {
	switch m {
	case On:
		return true
	case Off:
		return false
	}
	for _, p := range allow {
		if !within(p, Private) {
			return true
		}
	}
	return false
}

// within reports whether every address of p is in one of ps.
func within(p netip.Prefix, ps []netip.Prefix) bool {
	p = p.Masked()
	for _, q := range ps {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
