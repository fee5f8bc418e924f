package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// parseAdminHost reads one name of admin_hosts, a name the admin
// listener answers to besides IP literals and localhost (a reverse
// proxy's, say). An IP literal is answered anyway and a pattern would let
// a rebinding page's name match, so both are refused.
func parseAdminHost(s string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if _, err := netip.ParseAddr(name); err == nil {
		return "", fmt.Errorf("%q is an IP address, which the admin listener answers anyway; list host names only", s)
	}
	if !isHostname(name) {
		return "", fmt.Errorf("%q is not a host name", s)
	}
	return name, nil
}
