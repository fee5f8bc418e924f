package config

import (
	"fmt"
	"net/netip"
)

// wellKnownTLSNames are the certificate names of public DoT resolvers, so
// that DNS_HOST alone is enough for them, as it was for the Python daemon.
var wellKnownTLSNames = map[netip.Addr]string{
	netip.MustParseAddr("1.1.1.1"):              "cloudflare-dns.com",
	netip.MustParseAddr("1.0.0.1"):              "cloudflare-dns.com",
	netip.MustParseAddr("2606:4700:4700::1111"): "cloudflare-dns.com",
	netip.MustParseAddr("2606:4700:4700::1001"): "cloudflare-dns.com",
	netip.MustParseAddr("8.8.8.8"):              "dns.google",
	netip.MustParseAddr("8.8.4.4"):              "dns.google",
	netip.MustParseAddr("2001:4860:4860::8888"): "dns.google",
	netip.MustParseAddr("2001:4860:4860::8844"): "dns.google",
	netip.MustParseAddr("9.9.9.9"):              "dns.quad9.net",
	netip.MustParseAddr("149.112.112.112"):      "dns.quad9.net",
	netip.MustParseAddr("2620:fe::fe"):          "dns.quad9.net",
	netip.MustParseAddr("2620:fe::9"):           "dns.quad9.net",
	netip.MustParseAddr("94.140.14.14"):         "dns.adguard-dns.com",
	netip.MustParseAddr("94.140.15.15"):         "dns.adguard-dns.com",
}

// envDecoder collects the problems of the environment variables.
type envDecoder struct {
	getenv   func(string) string
	problems []*Problem
}

func (e *envDecoder) addf(key, format string, args ...any) {
	e.problems = append(e.problems, &Problem{File: envSource, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// ApplyEnv overrides c with the environment variables of the original
// Python daemon, read through getenv (os.Getenv in main); an empty value
// counts as unset.
//
//   - HOST and/or PORT replace the listen list with HOST:PORT; HOST is an
//     IP address (default 0.0.0.0), PORT defaults to 53.
//   - DNS_HOST, an IP address, replaces the upstream list with one
//     upstream named after it, on DNS_PORT (default 853). Its TLS name is
//     DNS_TLS_NAME or, for well-known public resolvers, their certificate
//     name; DNS_CA_FILE optionally names a PEM bundle to trust. DNS_PORT,
//     DNS_TLS_NAME and DNS_CA_FILE without DNS_HOST are errors.
//
// On error c is left unchanged and the error lists every problem.
func ApplyEnv(c *Config, getenv func(string) string) error {
	e := &envDecoder{getenv: getenv}
	listen, setListen := e.listen()
	up, setUpstream := e.upstream()
	if err := joinProblems(e.problems); err != nil {
		return err
	}
	if setListen {
		c.Listen = []netip.AddrPort{listen}
	}
	if setUpstream {
		c.Upstreams = []Upstream{up}
	}
	return nil
}

// listen reads HOST and PORT; it reports whether either is set.
func (e *envDecoder) listen() (netip.AddrPort, bool) {
	host, port := e.getenv("HOST"), e.getenv("PORT")
	if host == "" && port == "" {
		return netip.AddrPort{}, false
	}
	addr := netip.IPv4Unspecified()
	if host != "" {
		a, err := parseIP(host)
		if err != nil {
			e.addf("HOST", "%q is not an IP address", host)
		}
		addr = a
	}
	p := uint16(listenPort)
	if port != "" {
		var err error
		if p, err = parsePort(port); err != nil {
			e.addf("PORT", "%v", err)
		}
	}
	return netip.AddrPortFrom(addr, p), true
}

// upstream reads DNS_HOST and its companions; it reports whether DNS_HOST
// is set.
func (e *envDecoder) upstream() (Upstream, bool) {
	host := e.getenv("DNS_HOST")
	if host == "" {
		for _, k := range []string{"DNS_PORT", "DNS_TLS_NAME", "DNS_CA_FILE"} {
			if e.getenv(k) != "" {
				e.addf(k, "set without DNS_HOST")
			}
		}
		return Upstream{}, false
	}
	u := Upstream{Name: host}
	addr, err := parseIP(host)
	if err == nil && addr.IsUnspecified() {
		err = fmt.Errorf("unspecified")
	}
	if err != nil {
		e.addf("DNS_HOST", "%q is not a resolver's IP address", host)
	}
	port := uint16(upstreamPort)
	if s := e.getenv("DNS_PORT"); s != "" {
		if port, err = parsePort(s); err != nil {
			e.addf("DNS_PORT", "%v", err)
		}
	}
	u.Address = netip.AddrPortFrom(addr, port)

	switch name := e.getenv("DNS_TLS_NAME"); {
	case name != "":
		if u.TLSName, err = parseTLSName(name); err != nil {
			e.addf("DNS_TLS_NAME", "%v", err)
		}
	case addr.IsValid():
		var known bool
		if u.TLSName, known = wellKnownTLSNames[addr.Unmap().WithZone("")]; !known {
			e.addf("DNS_TLS_NAME", "required: DNS_HOST %s is not a well-known resolver, "+
				"so give the name its certificate must match (RFC 8310)", host)
		}
	}
	if f := e.getenv("DNS_CA_FILE"); f != "" {
		if u.CAFile, err = checkCAFile(f); err != nil {
			e.addf("DNS_CA_FILE", "%v", err)
		}
	}
	return u, true
}
