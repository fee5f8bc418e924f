package listener

import "net/netip"

// DefaultAllow is the client allow-list used when Options.Allow is nil:
// loopback, the RFC 1918 private ranges, shared address space (RFC 6598,
// carrier-grade NAT), link-local, and the IPv6 unique-local and link-local
// ranges. A home router's resolver answers its own networks, never the
// internet: an open resolver is an amplification reflector.
var DefaultAllow = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// acl decides which clients may query.
type acl []netip.Prefix

// allows reports whether a query from client may be answered. An
// IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket
// reports for an IPv4 peer) is checked as the IPv4 address it carries, and
// a zone is ignored, so that one IPv4 prefix covers both forms.
func (a acl) allows(client netip.Addr) bool {
	client = client.Unmap().WithZone("")
	for _, p := range a {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// newACL returns the access list for prefixes, with IPv4-mapped IPv6
// prefixes (::ffff:10.0.0.0/104) turned into the IPv4 prefixes they mean,
// since clients are checked unmapped.
func newACL(prefixes []netip.Prefix) acl {
	a := make(acl, 0, len(prefixes))
	for _, p := range prefixes {
		if addr := p.Addr(); addr.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(addr.Unmap(), p.Bits()-96)
		}
		a = append(a, p.Masked())
	}
	return a
}
