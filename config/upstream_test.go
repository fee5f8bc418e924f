package config

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/dotproxy/dotproxy/upstream"
)

// TestUpstreamAddressForms: every form of address, with its defaults:
// the port of the transport, /dns-query for DNS over HTTPS, tls_name
// from a host name.
func TestUpstreamAddressForms(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name, entry string // one upstream's keys besides name
		want        Upstream
	}{
		{"bare IP: DoT on 853", "address: 1.1.1.1, tls_name: x.test",
			Upstream{Transport: upstream.TLS, Address: ap("1.1.1.1:853"), TLSName: "x.test"}},
		{"IP and port", "address: '1.1.1.1:8853', tls_name: x.test",
			Upstream{Address: ap("1.1.1.1:8853"), TLSName: "x.test"}},
		{"tls:// with port", "address: 'tls://1.1.1.1:853', tls_name: x.test",
			Upstream{Address: ap("1.1.1.1:853"), TLSName: "x.test"}},
		{"tls:// without port, trailing slash", "address: 'tls://[2606:4700::1111]/', tls_name: x.test",
			Upstream{Address: ap("[2606:4700::1111]:853"), TLSName: "x.test"}},
		{"tls:// host name: tls_name from it", "address: 'tls://DNS.Quad9.net.'",
			Upstream{Host: "dns.quad9.net", Port: 853, TLSName: "dns.quad9.net"}},
		{"https:// IP, path given", "address: 'https://1.1.1.1/dns-query', tls_name: cloudflare-dns.com",
			Upstream{Transport: upstream.HTTPS, Address: ap("1.1.1.1:443"), Path: "/dns-query", TLSName: "cloudflare-dns.com"}},
		{"https:// no path: /dns-query", "address: 'https://[2001:4860:4860::8888]', tls_name: dns.google",
			Upstream{Transport: upstream.HTTPS, Address: ap("[2001:4860:4860::8888]:443"), Path: "/dns-query", TLSName: "dns.google"}},
		{"https:// trailing slash: /dns-query", "address: 'https://dns.google/'",
			Upstream{Transport: upstream.HTTPS, Host: "dns.google", Port: 443, Path: "/dns-query", TLSName: "dns.google"}},
		{"h3:// trailing slash: /dns-query", "address: 'h3://1.1.1.1:8443/', tls_name: x.test",
			Upstream{Transport: upstream.HTTP3, Address: ap("1.1.1.1:8443"), Path: "/dns-query", TLSName: "x.test"}},
		{"https:// slash and query: /dns-query and the query", "address: 'https://1.1.1.1/?x=1', tls_name: x.test",
			Upstream{Transport: upstream.HTTPS, Address: ap("1.1.1.1:443"), Path: "/dns-query?x=1", TLSName: "x.test"}},
		{"https:// port, own path and query", "address: 'https://10.0.0.1:8443/resolve/abc?x=1', tls_name: dns.home.test",
			Upstream{Transport: upstream.HTTPS, Address: ap("10.0.0.1:8443"), Path: "/resolve/abc?x=1", TLSName: "dns.home.test"}},
		{"https:// host name", "address: 'https://dns.google/dns-query', bootstrap: ['8.8.8.8', '2001:4860:4860::8888']",
			Upstream{Transport: upstream.HTTPS, Host: "dns.google", Port: 443, Path: "/dns-query", TLSName: "dns.google",
				Bootstrap: []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2001:4860:4860::8888")}}},
		{"host name, tls_name given", "address: 'https://doh.example/q', tls_name: dns.example",
			Upstream{Transport: upstream.HTTPS, Host: "doh.example", Port: 443, Path: "/q", TLSName: "dns.example"}},
		{"h3://", "address: 'h3://1.1.1.1/dns-query', tls_name: x.test",
			Upstream{Transport: upstream.HTTP3, Address: ap("1.1.1.1:443"), Path: "/dns-query", TLSName: "x.test"}},
		{"quic:// default port", "address: 'quic://94.140.14.14', tls_name: dns.adguard-dns.com",
			Upstream{Transport: upstream.QUIC, Address: ap("94.140.14.14:853"), TLSName: "dns.adguard-dns.com"}},
		{"quic:// port, scheme in capitals", "address: 'QUIC://[::1]:8853', tls_name: x.test",
			Upstream{Transport: upstream.QUIC, Address: ap("[::1]:8853"), TLSName: "x.test"}},
		{"fallback", "address: 'https://9.9.9.9', tls_name: dns.quad9.net, fallback: true",
			Upstream{Transport: upstream.HTTPS, Address: ap("9.9.9.9:443"), Path: "/dns-query", TLSName: "dns.quad9.net", Fallback: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A second upstream with an IP address: a host name can be
			// looked up through it.
			c, err := Parse("config.yaml", []byte("upstreams:\n  - {name: a, "+tc.entry+"}\n"+
				"  - {name: b, address: 192.0.2.1, tls_name: b.test}\n"))
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Name = "a"
			if got := c.Upstreams[0]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestUpstreamAddressErrors: each mistake in an upstream's address,
// fallback or bootstrap is a problem with its file, line and key, and
// all are reported at once.
func TestUpstreamAddressErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"schemes and URL parts", "upstreams:\n" +
			"  - {name: a, address: 'http://1.1.1.1/dns-query', tls_name: x.test}\n" +
			"  - {name: b, address: 'udp://1.1.1.1', tls_name: x.test}\n" +
			"  - {name: c, address: 'https://user:pw@1.1.1.1/dns-query', tls_name: x.test}\n" +
			"  - {name: d, address: 'https://1.1.1.1/dns-query#x', tls_name: x.test}\n" +
			"  - {name: e, address: 'tls://1.1.1.1/dns-query', tls_name: x.test}\n" +
			"  - {name: f, address: 'quic://1.1.1.1?x=1', tls_name: x.test}\n" +
			"  - {name: g, address: 'https://2606:4700::1111/dns-query', tls_name: x.test}\n" +
			"  - {name: h, address: 'https:///dns-query', tls_name: x.test}\n" +
			"  - {name: i, address: 'https://1.1.1.1:0/', tls_name: x.test}\n" +
			"  - {name: j, address: 'tls://0.0.0.0', tls_name: x.test}\n" +
			"  - {name: k, address: 'tls://dns_google', tls_name: x.test}\n" +
			"  - {name: l, address: 'tls://1.1.1', tls_name: x.test}\n" +
			"  - {name: m, address: 'dns.google', tls_name: dns.google}\n" +
			"  - {name: n, address: 1.1.1.1, tls_name: x.test}\n", []string{
			`config.yaml:2: upstreams[0].address: "http://1.1.1.1/dns-query": plain HTTP would carry the queries unencrypted; use https://`,
			`config.yaml:3: upstreams[1].address: "udp://1.1.1.1": unknown scheme "udp"; want tls, https, h3 or quic`,
			`config.yaml:4: upstreams[2].address: "https://user:pw@1.1.1.1/dns-query": a resolver's address takes no user information`,
			`config.yaml:5: upstreams[3].address: "https://1.1.1.1/dns-query#x": a resolver's address takes no fragment`,
			`config.yaml:6: upstreams[4].address: "tls://1.1.1.1/dns-query": tls:// takes no path or query; only DNS over HTTPS has one`,
			`config.yaml:7: upstreams[5].address: "quic://1.1.1.1?x=1": quic:// takes no path or query; only DNS over HTTPS has one`,
			`config.yaml:8: upstreams[6].address: "https://2606:4700::1111/dns-query" is not a valid URL (invalid port ":4700::1111" after host); IPv6 addresses go in brackets`,
			`config.yaml:9: upstreams[7].address: "https:///dns-query" names no host`,
			`config.yaml:10: upstreams[8].address: "https://1.1.1.1:0/": "0" is not a port number (1-65535)`,
			`config.yaml:11: upstreams[9].address: "tls://0.0.0.0": the unspecified address is not a resolver's`,
			`config.yaml:12: upstreams[10].address: "tls://dns_google": "dns_google" is not an IP address or a host name`,
			`config.yaml:13: upstreams[11].address: "tls://1.1.1": "1.1.1" is not an IP address or a host name`,
			`config.yaml:14: upstreams[12].address: "dns.google" is not an IP address[:port]; a host name goes in a URL, such as tls://dns.example`,
		}},
		{"tls_name still required with an IP", "upstreams:\n  - {name: a, address: 'https://1.1.1.1/dns-query'}\n", []string{
			"config.yaml:2: upstreams[0].tls_name: required (RFC 8310: the certificate must match it)",
		}},
		{"fallback and bootstrap values", "upstreams:\n" +
			"  - {name: a, address: 1.1.1.1, tls_name: x.test, fallback: maybe}\n" +
			"  - name: b\n    address: 'https://dns.example'\n    bootstrap: [192.0.2.1, 'dns.example', '0.0.0.0', '192.0.2.2:443']\n", []string{
			`config.yaml:2: upstreams[0].fallback: "maybe" is not true or false`,
			`config.yaml:5: upstreams[1].bootstrap[1]: "dns.example" is not an IP address`,
			`config.yaml:5: upstreams[1].bootstrap[2]: "0.0.0.0" is the unspecified address, not a resolver's`,
			`config.yaml:5: upstreams[1].bootstrap[3]: "192.0.2.2:443" is not an IP address`,
		}},
		{"bootstrap for an IP address", "upstreams:\n  - name: a\n    address: 1.1.1.1\n    tls_name: x.test\n    bootstrap: [1.1.1.1]\n", []string{
			"config.yaml:5: upstreams[0].bootstrap: only with a host name in address: an IP address needs no lookup",
		}},
		{"host names with no way to look them up", "upstreams:\n" +
			"  - {name: a, address: 'https://dns.google/dns-query'}\n" +
			"  - {name: b, address: 'tls://dns.quad9.net'}\n", []string{
			"config.yaml:2: upstreams[0].address: dns.google is a host name, and there is no way to find its address without plaintext DNS: " +
				"give its IP addresses in bootstrap, or list an upstream with an IP address to look it up through",
			"config.yaml:3: upstreams[1].address: dns.quad9.net is a host name, and there is no way to find its address without plaintext DNS: " +
				"give its IP addresses in bootstrap, or list an upstream with an IP address to look it up through",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("config.yaml", []byte(tc.yaml))
			if c != nil {
				t.Errorf("got a *Config with the error")
			}
			sameLines(t, problemLines(t, err), tc.want)
		})
	}
}

// TestUpstreamHostLookupPaths: a host name needs no bootstrap when
// another upstream can be reached without a lookup, an IP address or one
// with a bootstrap list of its own.
func TestUpstreamHostLookupPaths(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"through an IP address", "upstreams:\n  - {name: a, address: 'https://dns.google'}\n  - {name: b, address: 9.9.9.9, tls_name: dns.quad9.net}\n"},
		{"through a bootstrapped host", "upstreams:\n  - {name: a, address: 'https://dns.google'}\n" +
			"  - {name: b, address: 'tls://dns.quad9.net', bootstrap: [9.9.9.9]}\n"},
		{"its own bootstrap", "upstreams:\n  - {name: a, address: 'https://dns.google', bootstrap: [8.8.8.8]}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse("config.yaml", []byte(tc.yaml)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestUpstreamsCloned: Default's copies share no bootstrap list.
func TestUpstreamsCloned(t *testing.T) {
	c, err := Parse("config.yaml", []byte("upstreams:\n  - {name: a, address: 'https://dns.google', bootstrap: [8.8.8.8]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := c.clone()
	d.Upstreams[0].Bootstrap[0] = netip.MustParseAddr("192.0.2.1")
	if got := c.Upstreams[0].Bootstrap[0]; got != netip.MustParseAddr("8.8.8.8") {
		t.Errorf("changing the clone's bootstrap changed the original: %v", got)
	}
}
