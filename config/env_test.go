package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestApplyEnv(t *testing.T) {
	ca := writeCA(t)
	up := func(name, addr, tlsName string) []Upstream {
		return []Upstream{{Name: name, Address: netip.MustParseAddrPort(addr), TLSName: tlsName}}
	}
	tests := []struct {
		name      string
		env       map[string]string
		listen    []string   // nil: unchanged
		upstreams []Upstream // nil: unchanged
	}{
		{"nothing set", nil, nil, nil},
		{"empty values are unset", map[string]string{"HOST": "", "PORT": "", "DNS_HOST": ""}, nil, nil},
		{"HOST and PORT", map[string]string{"HOST": "127.0.0.1", "PORT": "5353"}, []string{"127.0.0.1:5353"}, nil},
		{"PORT only", map[string]string{"PORT": "5353"}, []string{"0.0.0.0:5353"}, nil},
		{"HOST only", map[string]string{"HOST": "192.0.2.1"}, []string{"192.0.2.1:53"}, nil},
		{"IPv6 HOST", map[string]string{"HOST": "::1", "PORT": "53"}, []string{"[::1]:53"}, nil},
		{"bracketed IPv6 HOST", map[string]string{"HOST": "[::]"}, []string{"[::]:53"}, nil},
		{"DNS_HOST well known", map[string]string{"DNS_HOST": "9.9.9.9"}, nil, up("9.9.9.9", "9.9.9.9:853", "dns.quad9.net")},
		{"DNS_HOST and DNS_PORT", map[string]string{"DNS_HOST": "1.1.1.1", "DNS_PORT": "8853"},
			nil, up("1.1.1.1", "1.1.1.1:8853", "cloudflare-dns.com")},
		{"DNS_TLS_NAME overrides the table", map[string]string{"DNS_HOST": "8.8.8.8", "DNS_TLS_NAME": "dns.test"},
			nil, up("8.8.8.8", "8.8.8.8:853", "dns.test")},
		{"private resolver", map[string]string{"DNS_HOST": "127.0.0.1", "DNS_PORT": "8853", "DNS_TLS_NAME": "dns.test", "DNS_CA_FILE": ca},
			nil, []Upstream{{Name: "127.0.0.1", Address: netip.MustParseAddrPort("127.0.0.1:8853"), TLSName: "dns.test", CAFile: ca}}},
		{"IPv6 DNS_HOST", map[string]string{"DNS_HOST": "2001:4860:4860::8844"},
			nil, up("2001:4860:4860::8844", "[2001:4860:4860::8844]:853", "dns.google")},
		{"everything", map[string]string{"HOST": "::", "PORT": "53", "DNS_HOST": "94.140.15.15"},
			[]string{"[::]:53"}, up("94.140.15.15", "94.140.15.15:853", "dns.adguard-dns.com")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			if err := ApplyEnv(c, func(k string) string { return tt.env[k] }); err != nil {
				t.Fatal(err)
			}
			want := Default()
			if tt.listen != nil {
				want.Listen = nil
				for _, s := range tt.listen {
					want.Listen = append(want.Listen, netip.MustParseAddrPort(s))
				}
			}
			if tt.upstreams != nil {
				want.Upstreams = tt.upstreams
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got\n%+v\n%+v\nwant\n%+v\n%+v", c.Listen, c.Upstreams, want.Listen, want.Upstreams)
			}
		})
	}
}

func TestApplyEnvWellKnown(t *testing.T) {
	want := map[string]string{
		"1.1.1.1": "cloudflare-dns.com", "1.0.0.1": "cloudflare-dns.com",
		"2606:4700:4700::1111": "cloudflare-dns.com", "2606:4700:4700::1001": "cloudflare-dns.com",
		"8.8.8.8": "dns.google", "8.8.4.4": "dns.google",
		"2001:4860:4860::8888": "dns.google", "2001:4860:4860::8844": "dns.google",
		"9.9.9.9": "dns.quad9.net", "149.112.112.112": "dns.quad9.net",
		"2620:fe::fe": "dns.quad9.net", "2620:fe::9": "dns.quad9.net",
		"94.140.14.14": "dns.adguard-dns.com", "94.140.15.15": "dns.adguard-dns.com",
		// The same addresses written another way.
		"2606:4700:4700:0:0:0:0:1111": "cloudflare-dns.com",
		"[2620:fe::9]":                "dns.quad9.net",
		"::ffff:8.8.8.8":              "dns.google",
	}
	if len(wellKnownTLSNames) != 14 {
		t.Errorf("%d well-known resolvers, want 14", len(wellKnownTLSNames))
	}
	for host, name := range want {
		c := Default()
		if err := ApplyEnv(c, func(k string) string { return map[string]string{"DNS_HOST": host}[k] }); err != nil {
			t.Errorf("DNS_HOST=%s: %v", host, err)
			continue
		}
		if got := c.Upstreams[0].TLSName; got != name {
			t.Errorf("DNS_HOST=%s: TLS name %q, want %q", host, got, name)
		}
	}
}

func TestApplyEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"PORT not a number", map[string]string{"PORT": "abc"}, []string{`environment: PORT: "abc" is not a port number (1-65535)`}},
		{"PORT too big", map[string]string{"PORT": "70000"}, []string{`environment: PORT: "70000" is not a port number (1-65535)`}},
		{"PORT 0", map[string]string{"HOST": "::1", "PORT": "0"}, []string{`environment: PORT: "0" is not a port number (1-65535)`}},
		{"HOST a name", map[string]string{"HOST": "localhost"}, []string{`environment: HOST: "localhost" is not an IP address`}},
		{"DNS_HOST not an IP", map[string]string{"DNS_HOST": "not-an-ip"},
			[]string{`environment: DNS_HOST: "not-an-ip" is not a resolver's IP address`}},
		{"DNS_HOST unspecified", map[string]string{"DNS_HOST": "0.0.0.0", "DNS_TLS_NAME": "x.test"},
			[]string{`environment: DNS_HOST: "0.0.0.0" is not a resolver's IP address`}},
		{"unknown DNS_HOST without DNS_TLS_NAME", map[string]string{"DNS_HOST": "192.0.2.53"},
			[]string{"environment: DNS_TLS_NAME: required: DNS_HOST 192.0.2.53 is not a well-known resolver, " +
				"so give the name its certificate must match (RFC 8310)"}},
		{"bad DNS_TLS_NAME", map[string]string{"DNS_HOST": "192.0.2.53", "DNS_TLS_NAME": "not a name"},
			[]string{`environment: DNS_TLS_NAME: "not a name" is not a valid host name`}},
		{"bad DNS_PORT", map[string]string{"DNS_HOST": "1.1.1.1", "DNS_PORT": "x"},
			[]string{`environment: DNS_PORT: "x" is not a port number (1-65535)`}},
		{"missing DNS_CA_FILE", map[string]string{"DNS_HOST": "1.1.1.1", "DNS_CA_FILE": "/nonexistent/ca.pem"},
			[]string{`environment: DNS_CA_FILE: open /nonexistent/ca.pem: no such file or directory`}},
		{"companions without DNS_HOST", map[string]string{"DNS_PORT": "853", "DNS_TLS_NAME": "x.test", "DNS_CA_FILE": "ca.pem"}, []string{
			"environment: DNS_PORT: set without DNS_HOST",
			"environment: DNS_TLS_NAME: set without DNS_HOST",
			"environment: DNS_CA_FILE: set without DNS_HOST"}},
		{"all at once", map[string]string{"HOST": "localhost", "PORT": "abc", "DNS_HOST": "not-an-ip", "DNS_PORT": "0"}, []string{
			`environment: HOST: "localhost" is not an IP address`,
			`environment: PORT: "abc" is not a port number (1-65535)`,
			`environment: DNS_HOST: "not-an-ip" is not a resolver's IP address`,
			`environment: DNS_PORT: "0" is not a port number (1-65535)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := ApplyEnv(c, func(k string) string { return tt.env[k] })
			sameLines(t, problemLines(t, err), tt.want)
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("a failed ApplyEnv changed the config: %+v", c)
			}
		})
	}
}

// TestApplyEnvNeverAnyCertificate guards RFC 8310 strict mode: no
// combination of variables yields an upstream without a TLS name.
func TestApplyEnvNeverAnyCertificate(t *testing.T) {
	for _, host := range []string{"192.0.2.1", "2001:db8::1", "1.1.1.2"} {
		c := Default()
		err := ApplyEnv(c, func(k string) string { return map[string]string{"DNS_HOST": host}[k] })
		if err == nil || !strings.Contains(err.Error(), "DNS_TLS_NAME") {
			t.Errorf("DNS_HOST=%s alone: error %v, want one naming DNS_TLS_NAME", host, err)
		}
	}
}
