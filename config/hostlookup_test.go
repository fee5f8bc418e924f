package config

import "testing"

// TestHostLookupRoutes: a host name of the house is looked up the way a
// client's query for it goes, never through a public upstream: a name
// under a forward rule or router:'s domains, a single label with router:,
// a local record or localhost need no other upstream; a single label
// without router: and a name in a locally served zone that no rule takes
// have no way at all unless they have a bootstrap list.
func TestHostLookupRoutes(t *testing.T) {
	const public = "  - {name: p, address: 9.9.9.9, tls_name: dns.quad9.net}\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string // problems; none: accepted
	}{
		{"under a forward rule, alone", "forward: [{domains: [lan], servers: [192.168.1.1]}]\n" +
			"upstreams:\n  - {name: a, address: 'https://resolver.lan:8443/dns-query'}\n", nil},
		{"single label with router:", "router: 192.168.1.1\nupstreams:\n  - {name: a, address: 'https://pihole/dns-query'}\n", nil},
		{"home.arpa with router:", "router: 192.168.1.1\nupstreams:\n  - {name: a, address: 'tls://dns.home.arpa'}\n", nil},
		{"single label under a forward rule of its own", "forward: [{domains: [pihole], servers: [192.168.1.1]}]\n" +
			"upstreams:\n  - {name: a, address: 'https://pihole/dns-query'}\n", nil},
		{"local record", "local_records: {dns.home.arpa: [192.168.1.5]}\nupstreams:\n  - {name: a, address: 'tls://dns.home.arpa'}\n", nil},
		{"localhost", "upstreams:\n  - {name: a, address: 'https://localhost:8443/dns-query'}\n", nil},
		{"single label with bootstrap", "upstreams:\n  - {name: a, address: 'https://pihole/dns-query', bootstrap: [192.168.1.5]}\n", nil},
		{"lan without a rule goes public, as a client's query does", "upstreams:\n  - {name: a, address: 'https://resolver.lan/dns-query'}\n" + public, nil},
		{"single label without router:", "upstreams:\n  - {name: a, address: 'https://pihole/dns-query'}\n" + public, []string{
			"config.yaml:2: upstreams[0].address: pihole is a single-label name, which never goes to a public resolver, and no router: takes it: " +
				"give its IP addresses in bootstrap, set router:, or add a forward rule or local record for it",
		}},
		{"home.arpa without a rule", "forward: [{domains: [lan], servers: [192.168.1.1]}]\n" +
			"upstreams:\n  - {name: a, address: 'tls://dns.home.arpa'}\n" + public, []string{
			"config.yaml:3: upstreams[0].address: dns.home.arpa is in home.arpa, which is answered here and never sent to a public resolver, " +
				"and no forward rule takes it: give its IP addresses in bootstrap, or add a forward rule or local record for it",
		}},
		{"a rule for another name of the zone", "forward: [{domains: [nas.home.arpa], servers: [192.168.1.1]}]\n" +
			"upstreams:\n  - {name: a, address: 'tls://dns.home.arpa'}\n" + public, []string{
			"config.yaml:3: upstreams[0].address: dns.home.arpa is in home.arpa, which is answered here and never sent to a public resolver, " +
				"and no forward rule takes it: give its IP addresses in bootstrap, or add a forward rule or local record for it",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("config.yaml", []byte(tc.yaml))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			sameLines(t, problemLines(t, err), tc.want)
		})
	}
}
