package config

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestForward(t *testing.T) {
	c, err := Parse("config.yaml", []byte(`forward:
  - domains: [LAN., fritz.box, 168.192.in-addr.arpa]
    servers: ["192.168.1.1", "[fd00::1]:5353"]
  - domains: [corp.example]
    servers: ["203.0.113.53"]
    tls_name: dns.corp.example
router: 192.168.1.1
rebind_protection:
  allow: [plex.direct.]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Forward{
		{Domains: []string{"lan", "fritz.box", "168.192.in-addr.arpa"},
			Servers: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.1:53"), netip.MustParseAddrPort("[fd00::1]:5353")}},
		{Domains: []string{"corp.example"}, Servers: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.53:853")},
			TLSName: "dns.corp.example"},
	}
	if !reflect.DeepEqual(c.Forward, want) {
		t.Errorf("forward = %+v, want %+v", c.Forward, want)
	}
	if c.Router != netip.MustParseAddrPort("192.168.1.1:53") {
		t.Errorf("router = %v", c.Router)
	}
	if !c.Rebind.Enabled || !reflect.DeepEqual(c.Rebind.Allow, []string{"plex.direct"}) {
		t.Errorf("rebind_protection = %+v", c.Rebind)
	}
}

// TestForwardErrors: no plain DNS to the internet, and every other
// mistake in a rule, reported with its line and key like any other.
func TestForwardErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"plain DNS to a public address", "forward:\n  - domains: [lan]\n    servers: [\"192.168.1.1\", \"8.8.8.8\"]\n", []string{
			"config.yaml:3: forward[0].servers[1]: 8.8.8.8 is a public address: plain DNS would cross the internet unencrypted; set tls_name to use DNS over TLS",
		}},
		{"plain DNS to a public IPv6 address", "forward:\n  - domains: [lan]\n    servers:\n      - \"2001:db8::53\"\n", []string{
			"config.yaml:4: forward[0].servers[0]: 2001:db8::53 is a public address: plain DNS would cross the internet unencrypted; set tls_name to use DNS over TLS",
		}},
		{"router on a public address", "router: 9.9.9.9\n", []string{
			"config.yaml:1: router: 9.9.9.9 is a public address: the router is asked in plain DNS, which must not cross the internet",
		}},
		{"missing keys", "forward:\n  - tls_name: dns.example\n", []string{
			"config.yaml:2: forward[0].domains: required: the domains this rule forwards",
			"config.yaml:2: forward[0].servers: required: the servers this rule forwards to",
		}},
		{"empty lists, root, bad names", "forward:\n  - domains: []\n    servers: []\n  - domains: [\".\", \"a..b\"]\n    servers: [\"nas\", \"0.0.0.0\"]\n", []string{
			"config.yaml:2: forward[0].domains: empty list; name at least one domain",
			"config.yaml:3: forward[0].servers: empty list; give at least one server",
			`config.yaml:4: forward[1].domains[0]: "." is the root; every name would be forwarded, which is what upstreams are for`,
			`config.yaml:4: forward[1].domains[1]: "a..b" is not a domain name`,
			`config.yaml:5: forward[1].servers[0]: "nas" is not an IP address[:port]`,
			`config.yaml:5: forward[1].servers[1]: "0.0.0.0" is not a server's address`,
		}},
		{"pins without tls_name", "forward:\n  - domains: [lan]\n    servers: [\"10.0.0.1\"]\n    spki_pins: [\"" + pinOf32 + "\"]\n", []string{
			"config.yaml:4: forward[0].spki_pins: only with tls_name: a plain DNS server has no certificate",
		}},
		{"domain in two rules", "forward:\n  - domains: [lan]\n    servers: [\"10.0.0.1\"]\n  - domains: [Lan.]\n    servers: [\"10.0.0.2\"]\n", []string{
			`config.yaml:4: forward[1].domains[0]: "lan" is already forwarded by forward[0].domains[0]`,
		}},
		{"hosts files", "hosts_files: [\"dhcp.leases\"]\nhosts_domain: \"a..b\"\n", []string{
			"config.yaml:1: hosts_files[0]: must be an absolute path, such as /tmp/dhcp.leases",
			`config.yaml:2: hosts_domain: "a..b" is not a domain name`,
		}},
		{"unknown key", "forward:\n  - domains: [lan]\n    servers: [\"10.0.0.1\"]\n    tls: true\n", []string{
			"config.yaml:4: forward[0].tls: unknown key",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("config.yaml", []byte(tt.yaml))
			if c != nil {
				t.Errorf("got a *Config with the error")
			}
			sameLines(t, problemLines(t, err), tt.want)
		})
	}
}

// pinOf32 is a valid pin: base64 of 32 octets.
const pinOf32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func TestInHouse(t *testing.T) {
	for s, want := range map[string]bool{
		"192.168.1.1": true, "10.1.2.3": true, "172.16.0.1": true, "127.0.0.1": true, "169.254.1.1": true,
		"100.100.100.100": true, "fd00::1": true, "fe80::1": true, "::1": true, "::ffff:192.168.1.1": true,
		"8.8.8.8": false, "172.32.0.1": false, "2001:4860:4860::8888": false, "::ffff:8.8.8.8": false, "100.128.0.1": false,
	} {
		if got := inHouse(netip.MustParseAddr(s)); got != want {
			t.Errorf("inHouse(%s) = %v, want %v", s, got, want)
		}
	}
}
