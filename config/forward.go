package config

import (
	"fmt"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Forward is one per-domain forwarding rule: names at or under one of
// Domains go to Servers and never to the public upstreams.
type Forward struct {
	Domains  []string         // lower case, no trailing dot; at least one
	Servers  []netip.AddrPort // at least one; port 53 by default, 853 with TLSName
	TLSName  string           // DNS over TLS to Servers with this name when set; plain DNS when ""
	SPKIPins [][]byte         // as an upstream's; only with TLSName
	CAFile   string           // as an upstream's; only with TLSName
}

// TLS reports whether the rule's servers are asked over TLS.
func (f Forward) TLS() bool { return f.TLSName != "" }

// RebindProtection configures the refusal of public answers that point
// into the house (DNS rebinding).
type RebindProtection struct {
	Enabled bool
	Allow   []string // domains whose public answers may carry private addresses; lower case, no trailing dot
}

// Ports a forward server has when the file gives none.
const (
	forwardPlainPort = 53
	forwardTLSPort   = 853
)

// sharedAddressSpace is RFC 6598's 100.64.0.0/10: carrier-grade NAT and
// overlay networks (Tailscale's MagicDNS is 100.100.100.100) use it, and
// it is not routed on the internet, so plain DNS to it stays off the
// internet as to a private address.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// inHouse reports whether plain DNS to a may be sent: a private,
// loopback, link-local or shared address, never one on the internet.
func inHouse(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || sharedAddressSpace.Contains(a)
}

// forwards is the field for the forward: list.
func (d *decoder) forwards(dst *[]Forward) field {
	return func(n *yaml.Node, p string) {
		out := make([]Forward, len(n.Content))
		if d.list(n, p, "", func(i int, n *yaml.Node, p string) {
			out[i] = d.forward(n, p)
		}) {
			*dst = out
		}
	}
}

// forward decodes one rule and checks it on its own: required keys, the
// servers' default ports and no plain DNS to the internet.
func (d *decoder) forward(n *yaml.Node, p string) Forward {
	var f Forward
	if !d.mapping(n, p, map[string]field{
		"domains":   values(d, &f.Domains, "a domain name", "empty list; name at least one domain", parseDomain),
		"servers":   values(d, &f.Servers, "an IP address[:port]", "empty list; give at least one server", parseServerAddr),
		"tls_name":  value(d, &f.TLSName, "a host name", parseTLSName),
		"spki_pins": values(d, &f.SPKIPins, "a base64 SHA-256 digest", "", parsePin),
		"ca_file":   value(d, &f.CAFile, "a file name", checkCAFile),
	}) {
		return f
	}
	for _, r := range []struct{ key, why string }{
		{"domains", "required: the domains this rule forwards"},
		{"servers", "required: the servers this rule forwards to"},
	} {
		if _, ok := d.lines[join(p, r.key)]; !ok {
			d.addf(n.Line, join(p, r.key), "%s", r.why)
		}
	}
	if !f.TLS() {
		for _, k := range []string{"spki_pins", "ca_file"} {
			if line, ok := d.lines[join(p, k)]; ok {
				d.addf(line, join(p, k), "only with tls_name: a plain DNS server has no certificate")
			}
		}
	}
	port := uint16(forwardPlainPort)
	if f.TLS() {
		port = forwardTLSPort
	}
	for i, s := range f.Servers {
		if !s.IsValid() {
			continue // reported
		}
		if s.Port() == 0 {
			f.Servers[i] = netip.AddrPortFrom(s.Addr(), port)
		}
		if !f.TLS() && !inHouse(s.Addr()) {
			sp := fmt.Sprintf("%s.servers[%d]", p, i)
			d.addf(d.lines[sp], sp, "%v is a public address: plain DNS would cross the internet unencrypted; set tls_name to use DNS over TLS", s.Addr())
		}
	}
	return f
}

// parseDomain reads a forwarded domain: a host name in any case, trailing
// dot optional. The root is refused: forwarding everything is what
// upstreams are for.
func parseDomain(s string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if name == "" {
		return "", fmt.Errorf("%q is the root; every name would be forwarded, which is what upstreams are for", s)
	}
	if !isHostname(name) {
		return "", fmt.Errorf("%q is not a domain name", s)
	}
	return name, nil
}

// parseServerAddr reads a forward server's address; port 0 stands for
// "not given" until the rule says whether it is plain DNS or TLS.
func parseServerAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		a, aerr := parseIP(s)
		if aerr != nil {
			return netip.AddrPort{}, fmt.Errorf("%q is not an IP address[:port]", s)
		}
		ap = netip.AddrPortFrom(a, 0)
	} else if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q has port 0", s)
	}
	if ap.Addr().IsUnspecified() || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q is not a server's address", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// parseRouter reads router:, the house's router as a plain DNS server;
// "" for none. Only an address in the house may be asked in plain text.
func parseRouter(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	ap, err := parseServerAddr(s)
	if err != nil {
		return ap, err
	}
	if ap.Port() == 0 {
		ap = netip.AddrPortFrom(ap.Addr(), forwardPlainPort)
	}
	if !inHouse(ap.Addr()) {
		return netip.AddrPort{}, fmt.Errorf("%v is a public address: the router is asked in plain DNS, which must not cross the internet", ap.Addr())
	}
	return ap, nil
}

// rebindFields is the schema of the rebind_protection: section.
func (d *decoder) rebindFields(r *RebindProtection) map[string]field {
	return map[string]field{
		"enabled": value(d, &r.Enabled, "true or false", parseBool),
		"allow":   values(d, &r.Allow, "a domain name", "", parseDomain),
	}
}

// uniqueForwardDomains reports a domain named by two rules at its second
// use: which of them wins would be a guess.
func (d *decoder) uniqueForwardDomains(fs []Forward) {
	first := map[string]string{}
	for i, f := range fs {
		for j, dom := range f.Domains {
			if dom == "" {
				continue // reported
			}
			p := fmt.Sprintf("forward[%d].domains[%d]", i, j)
			if at, dup := first[dom]; dup {
				d.addf(d.lines[p], p, "%q is already forwarded by %s", dom, at)
				continue
			}
			first[dom] = p
		}
	}
}
