package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// This file holds the checks that make -check start-up's judge: each
// rejects what a component would refuse when dotproxy starts (the filter,
// the query log), so that the problem is reported here, with its file,
// line and key, and exit status 2, instead of as a start-up failure.

// startup checks the relations between keys that start-up would refuse.
func (d *decoder) startup(c *Config) {
	d.uniqueGroupNames(c.Filter.Groups)
}

// parseList reads a blocklist or allowlist source: a file path, or an
// http(s) URL with a host (the filter fetches nothing else).
func parseList(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("empty")
	}
	if !strings.Contains(s, "://") {
		return s, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q: want a file path or an http(s) URL with a host", s)
	}
	return s, nil
}

// uniqueGroupNames reports a group without a name, and a name used twice
// at its second use: logs and metrics tell groups apart by name.
func (d *decoder) uniqueGroupNames(groups []Group) {
	first := map[string]int{}
	for i, g := range groups {
		item := fmt.Sprintf("filter.groups[%d]", i)
		p := item + ".name"
		if d.failed[p] || d.failed[item] {
			continue // reported already
		}
		if _, set := d.lines[p]; !set {
			d.addf(d.lines[item], p, "required: the name logs and metrics show")
			continue
		}
		if j, dup := first[g.Name]; dup {
			d.addf(d.lines[p], p, "%q is already the name of filter.groups[%d]", g.Name, j)
			continue
		}
		first[g.Name] = i
	}
}

// isLocalName reports whether s may be a local record's name: a host
// name whose last label is not all digits (no top-level domain is, and
// such a name reads as an address).
func isLocalName(s string) bool {
	if !isHostname(s) {
		return false
	}
	tld := s[strings.LastIndexByte(s, '.')+1:]
	return strings.Trim(tld, "0123456789") != ""
}

// parseQueryLogPath reads query_log.path: "-" for standard output, or a
// file in a directory that exists (the file is created at start).
func parseQueryLogPath(s string) (string, error) {
	if s == "-" {
		return s, nil
	}
	if strings.TrimSpace(s) == "" {
		return "", errors.New("empty")
	}
	if fi, err := os.Stat(s); err == nil && fi.IsDir() {
		return "", fmt.Errorf("%q is a directory; give a file", s)
	}
	dir := filepath.Dir(s)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%q: directory %s does not exist", s, dir)
	}
	return s, nil
}
