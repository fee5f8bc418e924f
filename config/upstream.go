package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/dotproxy/dotproxy/upstream"
)

// Upstream is one encrypted resolver: DNS over TLS (RFC 7858), over
// HTTPS (RFC 8484, on HTTP/2 or HTTP/3) or over QUIC (RFC 9250).
type Upstream struct {
	Name      string             // unique, non-empty; names the upstream in logs
	Transport upstream.Transport // the address's scheme; TLS for an address without one
	Address   netip.AddrPort     // IP and port; invalid when Host names the resolver instead
	Host      string             // the resolver's host name when the address gives one: lower case, no trailing dot
	Port      uint16             // Host's port; 0 with an IP address, whose port is Address's
	Path      string             // DNS over HTTPS: the URL's path, with its query if any; "" for TLS and QUIC
	TLSName   string             // the name the certificate must match (RFC 8310); no trailing dot; Host when not given
	SPKIPins  [][]byte           // SHA-256 digests of the SubjectPublicKeyInfo, 32 bytes each; may be empty
	CAFile    string             // PEM bundle to trust instead of the system roots; "" for the system roots
	Fallback  bool               // asked only when no upstream that is not a fallback is usable
	Bootstrap []netip.Addr       // Host's addresses from the start, until a lookup finds them, and while none can
}

// Anchored reports whether u can be reached without looking up its host
// name through another upstream: its address is an IP address, or it has
// a bootstrap list. A host name is looked up only through anchored
// upstreams, or those whose own lookup has succeeded.
func (u Upstream) Anchored() bool { return u.Address.IsValid() || len(u.Bootstrap) > 0 }

// schemes maps an upstream address's scheme to its transport.
var schemes = map[string]upstream.Transport{
	"tls":   upstream.TLS,
	"https": upstream.HTTPS,
	"h3":    upstream.HTTP3, // as AdGuard dnsproxy spells DNS over HTTP/3
	"quic":  upstream.QUIC,
}

// defaultDoHPath is the path of a DNS-over-HTTPS URL that gives none:
// the one RFC 8484's examples use, and every public resolver serves.
const defaultDoHPath = "/dns-query"

// upstreamAddr is the parsed form of an upstream's address.
type upstreamAddr struct {
	transport upstream.Transport
	addr      netip.AddrPort // valid for an IP address
	host      string         // else the host name
	port      uint16         // and its port
	path      string
}

// parseUpstreamAddress reads an upstream's address: an IP address with
// an optional port, as always (DNS over TLS), or a URL whose scheme is
// the transport: tls://, https://, h3:// or quic://, with an IP address
// or a host name, an optional port (the transport's own by default) and,
// for https and h3 only, a path (/dns-query when none is given, or only
// "/").
func parseUpstreamAddress(s string) (upstreamAddr, error) {
	scheme, _, isURL := strings.Cut(s, "://")
	if !isURL {
		ap, err := parseUpstreamAddr(s)
		if _, aerr := parseAddrPort(s, upstreamPort); aerr != nil {
			err = fmt.Errorf("%w; a host name goes in a URL, such as tls://dns.example", err)
		}
		if err != nil {
			return upstreamAddr{}, err
		}
		return upstreamAddr{transport: upstream.TLS, addr: ap}, nil
	}
	t, ok := schemes[strings.ToLower(scheme)]
	switch {
	case strings.EqualFold(scheme, "http"):
		return upstreamAddr{}, fmt.Errorf("%q: plain HTTP would carry the queries unencrypted; use https://", s)
	case !ok:
		return upstreamAddr{}, fmt.Errorf("%q: unknown scheme %q; want tls, https, h3 or quic", s, scheme)
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return upstreamAddr{}, fmt.Errorf("%q is not a valid URL (%v); IPv6 addresses go in brackets", s, err)
	}
	switch {
	case u.User != nil:
		return upstreamAddr{}, fmt.Errorf("%q: a resolver's address takes no user information", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return upstreamAddr{}, fmt.Errorf("%q: a resolver's address takes no fragment", s)
	case u.Host == "":
		return upstreamAddr{}, fmt.Errorf("%q names no host", s)
	}
	a := upstreamAddr{transport: t, port: t.DefaultPort()}
	if p := u.Port(); p != "" {
		if a.port, err = parsePort(p); err != nil {
			return upstreamAddr{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	if err := a.setHost(u.Hostname()); err != nil {
		return upstreamAddr{}, fmt.Errorf("%q: %w", s, err)
	}
	if t == upstream.HTTPS || t == upstream.HTTP3 {
		a.path = u.EscapedPath()
		if a.path == "" || a.path == "/" {
			// "https://dns.example/" is how a URL with no path is
			// often written; posting to / would get a 404 from
			// almost every resolver.
			a.path = defaultDoHPath
		}
		if u.RawQuery != "" {
			a.path += "?" + u.RawQuery
		}
	} else if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return upstreamAddr{}, fmt.Errorf("%q: %s:// takes no path or query; only DNS over HTTPS has one", s, scheme)
	}
	return a, nil
}

// setHost sets a's address from the URL's host: an IP address, or a
// host name whose top label is not all digits (such a name reads as a
// mistyped address).
func (a *upstreamAddr) setHost(h string) error {
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.IsUnspecified() {
			return errors.New("the unspecified address is not a resolver's")
		}
		a.addr, a.port = netip.AddrPortFrom(ip, a.port), 0
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if !isHostname(name) || strings.Trim(name[strings.LastIndexByte(name, '.')+1:], "0123456789") == "" {
		return fmt.Errorf("%q is not an IP address or a host name", h)
	}
	a.host = name
	return nil
}

// parseBootstrap reads a bootstrap address: an IP address without a
// port (the upstream's port is used).
func parseBootstrap(s string) (netip.Addr, error) {
	a, err := parseIP(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("%q is the unspecified address, not a resolver's", s)
	}
	return a.Unmap(), nil
}

// upstreams is the field for the upstream list, which replaces the
// default list as a whole.
func (d *decoder) upstreams(dst *[]Upstream) field {
	return func(n *yaml.Node, p string) {
		out := make([]Upstream, len(n.Content))
		if d.list(n, p, "empty list; at least one upstream is required", func(i int, n *yaml.Node, p string) {
			out[i] = d.upstream(n, p)
		}) {
			*dst = out
		}
	}
}

// upstream decodes one entry of the upstream list and reports the keys it
// lacks at the entry's first line.
func (d *decoder) upstream(n *yaml.Node, p string) Upstream {
	var u Upstream
	if !d.mapping(n, p, map[string]field{
		"name": value(d, &u.Name, "a name", parseName),
		"address": func(n *yaml.Node, p string) {
			if a, ok := parseScalar(d, n, p, "an address", parseUpstreamAddress); ok {
				u.Transport, u.Address, u.Host, u.Port, u.Path = a.transport, a.addr, a.host, a.port, a.path
			}
		},
		"tls_name":  value(d, &u.TLSName, "a host name", parseTLSName),
		"spki_pins": values(d, &u.SPKIPins, "a base64 SHA-256 digest", "", parsePin),
		"ca_file":   value(d, &u.CAFile, "a file name", checkCAFile),
		"fallback":  value(d, &u.Fallback, "true or false", parseBool),
		"bootstrap": values(d, &u.Bootstrap, "an IP address", "", parseBootstrap),
	}) {
		return u
	}
	required := []struct{ key, why string }{
		{"name", "required: every upstream has a unique name, used in logs"},
		{"address", "required: the resolver's IP address (port 853 unless given) or URL"},
	}
	if u.Host != "" {
		if u.TLSName == "" {
			u.TLSName = u.Host
		}
	} else if !d.failed[join(p, "address")] {
		// With a host name tls_name defaults to it; with an IP there is
		// nothing to default to; with an address in error, who knows.
		required = append(required, struct{ key, why string }{"tls_name", "required (RFC 8310: the certificate must match it)"})
	}
	for _, r := range required {
		if _, ok := d.lines[join(p, r.key)]; !ok {
			d.addf(n.Line, join(p, r.key), "%s", r.why)
		}
	}
	if line, ok := d.lines[join(p, "bootstrap")]; ok && u.Address.IsValid() {
		d.addf(line, join(p, "bootstrap"), "only with a host name in address: an IP address needs no lookup")
	}
	return u
}
