package config

import (
	"errors"
	"path/filepath"
)

// parseHostsFile reads one of hosts_files: an absolute path, since the
// file is read again later whatever the working directory is then. It
// need not exist yet: a lease file appears with the first lease.
func parseHostsFile(s string) (string, error) {
	if !filepath.IsAbs(s) {
		return "", errors.New("must be an absolute path, such as /tmp/dhcp.leases")
	}
	return filepath.Clean(s), nil
}

// parseHostsDomain reads hosts_domain: a domain, or "" for none.
func parseHostsDomain(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	return parseDomain(s)
}
