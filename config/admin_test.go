package config

import (
	"slices"
	"testing"
)

func TestAdminHosts(t *testing.T) {
	c, err := Parse("config.yaml", []byte("admin_hosts: [DNS.Home.Arpa., router]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dns.home.arpa", "router"}; !slices.Equal(c.AdminHosts, want) {
		t.Errorf("admin_hosts %q, want %q", c.AdminHosts, want)
	}

	_, err = Parse("config.yaml", []byte("admin_hosts:\n  - 192.168.1.1\n  - '*.home.arpa'\n  - ''\n"))
	sameLines(t, problemLines(t, err), []string{
		`config.yaml:2: admin_hosts[0]: "192.168.1.1" is an IP address, which the admin listener answers anyway; list host names only`,
		`config.yaml:3: admin_hosts[1]: "*.home.arpa" is not a host name`,
		`config.yaml:4: admin_hosts[2]: "" is not a host name`,
	})
}
