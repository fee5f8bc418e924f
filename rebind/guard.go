// Package rebind owns DNS rebinding protection: it refuses an answer from
// the public upstreams that points into the house (a private, loopback,
// link-local or unspecified address), so that a web page cannot make its
// own name resolve to the router or the NAS and reach them from the
// browser with the page's origin. It judges only the answers of the
// resolver it wraps; forwarded names and local records never pass it.
package rebind

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// Options configures a Guard.
type Options struct {
	// Allow lists the domains (any case, trailing dot optional) whose
	// names may resolve into the house, plex.direct say: a query for
	// one of them or a name under it passes whatever it answers.
	Allow []string
}

// Guard is the rebinding check in front of the public upstreams.
type Guard struct {
	next  resolver.Resolver
	allow map[string]bool // lower-case FQDNs
}

var _ resolver.Resolver = (*Guard)(nil)

// New returns next behind the rebinding check.
func New(next resolver.Resolver, opts Options) *Guard {
	g := &Guard{next: next, allow: make(map[string]bool, len(opts.Allow))}
	for _, d := range opts.Allow {
		g.allow[dns.Fqdn(strings.ToLower(d))] = true
	}
	return g
}

// Text is the EXTRA-TEXT of the Extended DNS Error a refused answer
// carries.
const Text = "DNS rebinding: a public name points into the private network"

// Resolve implements resolver.Resolver. An answer that points into the
// house becomes REFUSED with Extended DNS Error 15 (Blocked, RFC 8914:
// blocked by the operator's security policy): the name exists and the
// upstream answered, so neither NXDOMAIN nor SERVFAIL would be true, and
// 18 (Prohibited) is about the client, not the name. An upstream that
// blocks names with 0.0.0.0 is refused too: the name stays blocked.
func (g *Guard) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	resp, err := g.next.Resolve(ctx, req)
	if err != nil || g.allowed(req.Name) {
		return resp, err
	}
	m, uerr := resp.Unpack()
	if uerr != nil || m == nil || !pointsInside(m) {
		return resp, err
	}
	req.Info.SetRebind()
	out := req.Reply(dns.RcodeRefused)
	out.RecursionAvailable = true
	resolver.SetEDE(out, req, dns.ExtendedErrorCodeBlocked, Text)
	return resolver.Response{Msg: out}, nil
}

// allowed reports whether name is at or under an allowed domain. The
// query's name decides, not a CNAME target's: the browser's origin is
// the name it asked for, and a page's name that CNAMEs to an allowed
// domain's private address is the very attack.
func (g *Guard) allowed(name string) bool {
	if len(g.allow) == 0 {
		return false
	}
	name = dns.Fqdn(strings.ToLower(name))
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if g.allow[name[off:]] {
			return true
		}
	}
	return false
}

// pointsInside reports whether m's answer section holds an address of
// the house: an A or AAAA record, or the address hints of an SVCB or
// HTTPS record, which browsers connect to. The upstream scrubbed the
// section to the query's name and its CNAME chain, so an address at the
// chain's end is there too.
func pointsInside(m *dns.Msg) bool {
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if inside(rr.A) {
				return true
			}
		case *dns.AAAA:
			if inside(rr.AAAA) {
				return true
			}
		case *dns.HTTPS:
			if hintsInside(rr.Value) {
				return true
			}
		case *dns.SVCB:
			if hintsInside(rr.Value) {
				return true
			}
		}
	}
	return false
}

func hintsInside(kvs []dns.SVCBKeyValue) bool {
	for _, kv := range kvs {
		var ips []net.IP
		switch kv := kv.(type) {
		case *dns.SVCBIPv4Hint:
			ips = kv.Hint
		case *dns.SVCBIPv6Hint:
			ips = kv.Hint
		}
		for _, ip := range ips {
			if inside(ip) {
				return true
			}
		}
	}
	return false
}

// thisNetwork is 0.0.0.0/8 (RFC 1122 "this host on this network"):
// browsers have reached local services through 0.0.0.0.
var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

// inside reports whether ip is an address of the house: private
// (RFC 1918, RFC 4193), loopback, link-local or 0.0.0.0/8 and ::, IPv4
// mapped into IPv6 included. The shared space 100.64.0.0/10 is not:
// people publish their Tailscale hosts' addresses in public DNS.
func inside(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() ||
		(a.Is4() && thisNetwork.Contains(a))
}
