package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestParseValues(t *testing.T) {
	pin := sha256.Sum256([]byte("a key"))
	pin64 := base64.StdEncoding.EncodeToString(pin[:])
	addrs := func(ss ...string) (aps []netip.AddrPort) {
		for _, s := range ss {
			aps = append(aps, netip.MustParseAddrPort(s))
		}
		return aps
	}
	tests := []struct {
		name, yaml string
		check      func(c *Config) any // returns the value under test
		want       any
	}{
		{"upstream port defaults to 853", "upstreams:\n- {name: a, address: 1.1.1.1, tls_name: one.one.one.one}\n",
			func(c *Config) any { return c.Upstreams[0].Address }, netip.MustParseAddrPort("1.1.1.1:853")},
		{"upstream port given", "upstreams:\n- {name: a, address: '1.1.1.1:8853', tls_name: x.test}\n",
			func(c *Config) any { return c.Upstreams[0].Address }, netip.MustParseAddrPort("1.1.1.1:8853")},
		{"bare IPv6 upstream", "upstreams:\n- {name: a, address: '2606:4700::1111', tls_name: x.test}\n",
			func(c *Config) any { return c.Upstreams[0].Address }, netip.MustParseAddrPort("[2606:4700::1111]:853")},
		{"bracketed IPv6 upstream", "upstreams:\n- {name: a, address: '[2606:4700::1111]', tls_name: x.test}\n",
			func(c *Config) any { return c.Upstreams[0].Address }, netip.MustParseAddrPort("[2606:4700::1111]:853")},
		{"IPv6 upstream with port", "upstreams:\n- {name: a, address: '[2606:4700::1111]:853', tls_name: x.test}\n",
			func(c *Config) any { return c.Upstreams[0].Address }, netip.MustParseAddrPort("[2606:4700::1111]:853")},
		{"upstream list replaces the default", "upstreams:\n- {name: a, address: 1.1.1.1, tls_name: x.test}\n",
			func(c *Config) any { return len(c.Upstreams) }, 1},
		{"tls_name trailing dot dropped", "upstreams:\n- {name: a, address: 1.1.1.1, tls_name: dns.google.}\n",
			func(c *Config) any { return c.Upstreams[0].TLSName }, "dns.google"},
		{"SPKI pins decoded", "upstreams:\n- {name: a, address: 1.1.1.1, tls_name: x.test, spki_pins: [" + pin64 + ", " + pin64 + "]}\n",
			func(c *Config) any { return c.Upstreams[0].SPKIPins }, [][]byte{pin[:], pin[:]}},
		{"listen port defaults to 53", "listen: [127.0.0.1, '::1', '[::1]:5353']\n",
			func(c *Config) any { return c.Listen }, addrs("127.0.0.1:53", "[::1]:53", "[::1]:5353")},
		{"allow bare IPs and masking", "allow: [192.0.2.1, '2001:db8::1', 10.1.2.3/8]\n",
			func(c *Config) any { return c.Allow }, []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32"),
				netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("10.0.0.0/8")}},
		{"hedge_delay may be zero", "hedge_delay: 0s\n",
			func(c *Config) any { return c.HedgeDelay }, time.Duration(0)},
		{"durations", "timeout: 250ms\nquery_timeout: 1m\n",
			func(c *Config) any { return []time.Duration{c.Timeout, c.QueryTimeout} },
			[]time.Duration{250 * time.Millisecond, time.Minute}},
		{"probe name made fully qualified, type any case", "health: {probe: 'example.com aaaa'}\n",
			func(c *Config) any { return []any{c.Health.ProbeName, c.Health.ProbeType} }, []any{"example.com.", dns.TypeAAAA}},
		{"every policy", "policy: round_robin\n", func(c *Config) any { return c.Policy }, "round_robin"},
		{"json logs", "log: {format: json, level: error}\n", func(c *Config) any { return c.Log }, Log{Level: 8, Format: "json"}},
		{"YAML aliases are followed", "timeout: &t 3s\nhealth: {timeout: *t}\n",
			func(c *Config) any { return c.Health.Timeout }, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("config.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseCAFile(t *testing.T) {
	ca := writeCA(t)
	c, err := Parse("config.yaml", []byte("upstreams:\n- {name: a, address: 127.0.0.1, tls_name: dns.test, ca_file: '"+ca+"'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Upstreams[0].CAFile; got != ca {
		t.Errorf("CAFile = %q, want %q", got, ca)
	}

	notPEM := writeFile(t, "ca.pem", "not a certificate\n")
	missing := t.TempDir() + "/missing.pem"
	_, err = Parse("config.yaml", []byte("upstreams:\n"+
		"- {name: a, address: 127.0.0.1, tls_name: dns.test, ca_file: '"+notPEM+"'}\n"+
		"- {name: b, address: 127.0.0.1, tls_name: dns.test, ca_file: '"+missing+"'}\n"))
	sameLines(t, problemLines(t, err), []string{
		`config.yaml:2: upstreams[0].ca_file: "` + notPEM + `" holds no PEM certificate`,
		`config.yaml:3: upstreams[1].ca_file: open ` + missing + `: no such file or directory`,
	})
}

// TestParseReportsEverything checks that one file with many mistakes gets
// them all, in file order, each once.
func TestParseReportsEverything(t *testing.T) {
	const file = `listen: ["0.0.0.0:99999"]
upstreams:
  - name: a
    address: 1.1.1.1
    tls_name: [one.one.one.one]
  - name: a
    address: dns.google
policy: fastes
timeout: 1.5x
tmeout: 1s
health:
  fall: 0
  probe: ". XX"
allow: [10.0.0.0/33]
log: {level: loud, format: xml}
`
	_, err := Parse("/etc/dotproxy/config.yaml", []byte(file))
	lines := problemLines(t, err)
	sameLines(t, lines, []string{
		`/etc/dotproxy/config.yaml:1: listen[0]: "0.0.0.0:99999" is not an address:port`,
		`/etc/dotproxy/config.yaml:5: upstreams[0].tls_name: expected a host name, got a list`,
		`/etc/dotproxy/config.yaml:6: upstreams[1].name: "a" is already the name of upstreams[0]`,
		// No tls_name problem: whether the address needs one is not
		// known while the address is wrong.
		`/etc/dotproxy/config.yaml:7: upstreams[1].address: "dns.google" is not an IP address[:port]; a host name goes in a URL, such as tls://dns.example`,
		`/etc/dotproxy/config.yaml:8: policy: "fastes" is not one of fastest | round_robin | random | ordered`,
		`/etc/dotproxy/config.yaml:9: timeout: "1.5x" is not a duration`,
		`/etc/dotproxy/config.yaml:10: tmeout: unknown key`,
		`/etc/dotproxy/config.yaml:12: health.fall: must be at least 1, got 0`,
		`/etc/dotproxy/config.yaml:13: health.probe: ". XX": "XX" is not a query type`,
		`/etc/dotproxy/config.yaml:14: allow[0]: "10.0.0.0/33" is not a CIDR prefix`,
		`/etc/dotproxy/config.yaml:15: log.level: "loud" is not one of debug | info | warn | error`,
		`/etc/dotproxy/config.yaml:15: log.format: "xml" is not one of text | json`,
	})
	if len(lines) != 12 {
		t.Errorf("%d problems, want 12", len(lines))
	}
}

// TestParseIsDeterministic guards the order of problems, which must not
// depend on map iteration.
func TestParseIsDeterministic(t *testing.T) {
	const file = "a: 1\nb: 2\nc: 3\nhealth: {x: 1, y: 2, z: 3}\n"
	_, first := Parse("f", []byte(file))
	for range 20 {
		if _, err := Parse("f", []byte(file)); err.Error() != first.Error() {
			t.Fatalf("order changed:\n%v\nthen\n%v", first, err)
		}
	}
	if !bytes.Contains([]byte(first.Error()), []byte("f:4: health.z: unknown key")) {
		t.Errorf("missing health.z in:\n%v", first)
	}
}
