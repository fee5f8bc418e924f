package forward

import "strconv"

// RouterDomains returns the domains router: forwards to the house's
// router, the names a home router's DHCP server and DNS answer for:
//
//   - lan (OpenWrt, many others), home.arpa (RFC 8375), internal (ICANN's
//     private-use TLD, 2024), localdomain (pfSense, older Linux
//     defaults), fritz.box (AVM FRITZ!Box);
//   - the reverse zones of the private IPv4 ranges (10/8, 172.16/12,
//     192.168/16, RFC 1918), of IPv6 unique local (fd00::/8, RFC 4193) and
//     link-local (fe80::/10) addresses, so that reverse lookups of LAN
//     addresses find the router's DHCP names.
//
// local is left out on purpose: it is multicast DNS's (RFC 6762 §3),
// answered by the devices themselves, not by a router's unicast DNS; it
// stays answered here with NXDOMAIN, and a house whose router does serve
// it (an old Active Directory domain) names it in a forward rule.
// Single-label names go to the router too; see Options.SingleLabel.
func RouterDomains() []string {
	d := []string{"lan", "home.arpa", "internal", "localdomain", "fritz.box",
		"10.in-addr.arpa", "168.192.in-addr.arpa", "d.f.ip6.arpa",
		"8.e.f.ip6.arpa", "9.e.f.ip6.arpa", "a.e.f.ip6.arpa", "b.e.f.ip6.arpa"}
	for i := 16; i <= 31; i++ {
		d = append(d, strconv.Itoa(i)+".172.in-addr.arpa")
	}
	return d
}
