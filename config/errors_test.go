package config

import (
	"errors"
	"testing"
)

// TestParseErrors checks each class of mistake: the exact text, so the
// file, line and key path of every problem.
func TestParseErrors(t *testing.T) {
	const up = "upstreams:\n  - name: a\n    address: 1.1.1.1\n    tls_name: x.test\n" // lines 1-4
	tests := []struct {
		name, yaml string
		want       []string
	}{
		// Structure.
		{"unknown key", "timeout: 1s\ntmeout: 1s\n", []string{"config.yaml:2: tmeout: unknown key"}},
		{"unknown nested key", "health:\n  fall: 2\n  intervall: 1s\n", []string{"config.yaml:3: health.intervall: unknown key"}},
		{"unknown upstream key", up + "    tls-name: x\n", []string{"config.yaml:5: upstreams[0].tls-name: unknown key"}},
		{"repeated key", "policy: random\npolicy: ordered\n", []string{"config.yaml:2: policy: repeated key (first at line 1)"}},
		{"list for a string", "policy: [fastest]\n", []string{"config.yaml:1: policy: expected a policy name, got a list"}},
		{"mapping for a list", "listen: {a: b}\n", []string{"config.yaml:1: listen: expected a list, got a mapping"}},
		{"string for a section", "health: often\n", []string{`config.yaml:1: health: expected a mapping of keys, got "often"`}},
		{"string for an upstream", "upstreams: [1.1.1.1]\n", []string{`config.yaml:1: upstreams[0]: expected a mapping of keys, got "1.1.1.1"`}},
		{"empty upstream entry", "upstreams:\n  -\n", []string{"config.yaml:2: upstreams[0]: empty list entry"}},
		{"top level a list", "- a\n", []string{"config.yaml:1: expected a mapping of keys, got a list"}},
		{"second document", "policy: random\n---\npolicy: ordered\n",
			[]string{"config.yaml:2: a second YAML document; the configuration is one document"}},
		{"syntax error", "timeout: 1s\nlisten: [a\n", []string{"config.yaml:2: YAML syntax error: did not find expected ',' or ']'"}},
		{"syntax error, 0-based in yaml.v3", "timeout: 1s\n\n\nlisten: [a, b\n\nx: 1\n",
			[]string{"config.yaml:4: YAML syntax error: did not find expected ',' or ']'"}},
		{"syntax error, indentation", "log:\n  level: info\n format: json\n",
			[]string{"config.yaml:3: YAML syntax error: did not find expected key"}},
		{"syntax error, tab", "health:\n\tfall: 1\n", []string{"config.yaml:2: YAML syntax error: found character that cannot start any token"}},
		{"syntax error on line 1", "a: b: c\n", []string{"config.yaml:1: YAML syntax error: mapping values are not allowed in this context"}},
		{"control character", "policy: random\nlog: {level: \"x\x01\"}\n", []string{"config.yaml:2: YAML syntax error: control characters are not allowed"}},

		// Listen.
		{"bad listen port", "listen: [\"0.0.0.0:99999\"]\n", []string{`config.yaml:1: listen[0]: "0.0.0.0:99999" is not an address:port`}},
		{"listen host name", "listen:\n  - localhost:53\n", []string{`config.yaml:2: listen[0]: "localhost:53" is not an address:port`}},
		{"listen port 0", "listen: [\"127.0.0.1:0\"]\n", []string{`config.yaml:1: listen[0]: "127.0.0.1:0" has port 0`}},
		{"listen twice", "listen:\n  - 127.0.0.1:53\n  - 127.0.0.1\n", []string{"config.yaml:3: listen[1]: 127.0.0.1:53 is already listen[0]"}},
		{"empty listen", "listen: []\n",
			[]string{"config.yaml:1: listen: empty list; give at least one address, or leave the key out for the default"}},

		// Upstreams.
		{"empty upstreams", "upstreams: []\n", []string{"config.yaml:1: upstreams: empty list; at least one upstream is required"}},
		{"no tls_name", "upstreams:\n  - name: a\n    address: 1.1.1.1\n  - name: b\n    address: 1.0.0.1\n    tls_name: x.test\n",
			[]string{"config.yaml:2: upstreams[0].tls_name: required (RFC 8310: the certificate must match it)"}},
		{"nothing", "upstreams:\n  - {}\n", []string{
			"config.yaml:2: upstreams[0].name: required: every upstream has a unique name, used in logs",
			"config.yaml:2: upstreams[0].address: required: the resolver's IP address (port 853 unless given) or URL",
			"config.yaml:2: upstreams[0].tls_name: required (RFC 8310: the certificate must match it)"}},
		{"empty name", up + "  - {name: '', address: 1.0.0.1, tls_name: x.test}\n",
			[]string{"config.yaml:5: upstreams[1].name: must not be empty"}},
		{"duplicate name", up + "  - {name: a, address: 1.0.0.1, tls_name: x.test}\n",
			[]string{`config.yaml:5: upstreams[1].name: "a" is already the name of upstreams[0]`}},
		{"host name address", "upstreams:\n  - {name: a, address: 'dns.google:853', tls_name: dns.google}\n",
			[]string{`config.yaml:2: upstreams[0].address: "dns.google:853" is not an IP address[:port]; a host name goes in a URL, such as tls://dns.example`}},
		{"unspecified address", "upstreams:\n  - {name: a, address: 0.0.0.0, tls_name: x.test}\n",
			[]string{`config.yaml:2: upstreams[0].address: "0.0.0.0" is the unspecified address, not a resolver's`}},
		{"bad tls_name", "upstreams:\n  - {name: a, address: 1.1.1.1, tls_name: dns_google}\n",
			[]string{`config.yaml:2: upstreams[0].tls_name: "dns_google" is not a valid host name`}},
		{"IP tls_name", "upstreams:\n  - {name: a, address: 1.1.1.1, tls_name: 1.1.1.1}\n",
			[]string{`config.yaml:2: upstreams[0].tls_name: "1.1.1.1" is an IP address; give the host name on the resolver's certificate`}},
		{"bad pins", up + "    spki_pins:\n      - not*base64\n      - AAAA\n", []string{
			`config.yaml:6: upstreams[0].spki_pins[0]: "not*base64" is not base64`,
			`config.yaml:7: upstreams[0].spki_pins[1]: "AAAA" decodes to 3 bytes, not the 32 of a SHA-256 digest`}},

		// Scalars.
		{"unknown policy", "policy: fastes\n",
			[]string{`config.yaml:1: policy: "fastes" is not one of fastest | round_robin | random | ordered`}},
		{"bad duration", "\n\ntimeout: 1.5x\n", []string{`config.yaml:3: timeout: "1.5x" is not a duration`}},
		{"duration without unit", "timeout: 5\n", []string{`config.yaml:1: timeout: "5" is not a duration`}},
		{"zero duration", "connections: {idle_timeout: 0s}\n", []string{`config.yaml:1: connections.idle_timeout: must be positive, got "0s"`}},
		{"negative duration", "health:\n  interval: -10s\n", []string{`config.yaml:2: health.interval: must be positive, got "-10s"`}},
		{"negative hedge_delay", "hedge_delay: -1ms\n", []string{`config.yaml:1: hedge_delay: must not be negative, got "-1ms"`}},
		{"query_timeout not above timeout", "timeout: 2s\nquery_timeout: 2s\n",
			[]string{"config.yaml:2: query_timeout: must be longer than timeout (2s), got 2s"}},
		{"query_timeout below default timeout", "query_timeout: 1s\n",
			[]string{"config.yaml:1: query_timeout: must be longer than timeout (1.5s), got 1s"}},
		{"timeout above default query_timeout", "timeout: 5s\n",
			[]string{"config.yaml:1: timeout: must be shorter than query_timeout (4s), got 5s"}},
		{"fall and rise below 1", "health: {fall: 0, rise: -1}\n", []string{
			"config.yaml:1: health.fall: must be at least 1, got 0",
			"config.yaml:1: health.rise: must be at least 1, got -1"}},
		{"not an integer", "health:\n  fall: two\nconnections:\n  max_per_upstream: 1.5\n", []string{
			`config.yaml:2: health.fall: "two" is not an integer`,
			`config.yaml:4: connections.max_per_upstream: "1.5" is not an integer`}},
		{"limits below 1", "tcp:\n  max_connections: 0\n  max_per_client: 0\n  max_inflight_per_conn: 0\n", []string{
			"config.yaml:2: tcp.max_connections: must be at least 1, got 0",
			"config.yaml:3: tcp.max_per_client: must be at least 1, got 0",
			"config.yaml:4: tcp.max_inflight_per_conn: must be at least 1, got 0"}},
		{"bad probe", "health:\n  probe: NS\n", []string{`config.yaml:2: health.probe: "NS" is not "NAME TYPE", such as ". NS"`}},
		{"bad probe name", "health:\n  probe: 'a..b NS'\n", []string{`config.yaml:2: health.probe: "a..b NS": "a..b" is not a domain name`}},
		{"bad probe type", "health:\n  probe: '. XX'\n", []string{`config.yaml:2: health.probe: ". XX": "XX" is not a query type`}},
		{"bad log level", "log:\n  level: verbose\n", []string{`config.yaml:2: log.level: "verbose" is not one of debug | info | warn | error`}},
		{"bad log format", "log:\n  format: xml\n", []string{`config.yaml:2: log.format: "xml" is not one of text | json`}},

		// Allow.
		{"bad CIDR", "allow:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n", []string{`config.yaml:3: allow[1]: "10.0.0.0/33" is not a CIDR prefix`}},
		{"host name in allow", "allow: [localhost]\n", []string{`config.yaml:1: allow[0]: "localhost" is not an IP address or CIDR prefix`}},
		{"empty allow", "allow: []\n",
			[]string{"config.yaml:1: allow: empty list would refuse every client; allow all with 0.0.0.0/0 and ::/0"}},
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

func TestProblemAs(t *testing.T) {
	_, err := Parse("/etc/dotproxy/config.yaml", []byte("\n\n\n\n\n\nupstreams:\n  - name: a\n    address: 1.1.1.1\n"))
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("errors.As(%v) found no *Problem", err)
	}
	want := Problem{File: "/etc/dotproxy/config.yaml", Line: 8, Key: "upstreams[0].tls_name",
		Msg: "required (RFC 8310: the certificate must match it)"}
	if *p != want {
		t.Errorf("got %+v, want %+v", *p, want)
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "f.yaml", Line: 3, Key: "timeout", Msg: "m"}, "f.yaml:3: timeout: m"},
		{Problem{File: "f.yaml", Line: 3, Msg: "YAML syntax error: x"}, "f.yaml:3: YAML syntax error: x"},
		{Problem{File: "f.yaml", Key: "query_timeout", Msg: "m"}, "f.yaml: query_timeout: m"},
		{Problem{File: "environment", Key: "PORT", Msg: "m"}, "environment: PORT: m"},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
