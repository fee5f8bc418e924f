package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Cache configures the answer cache.
type Cache struct {
	Enabled     bool
	Size        int           // most entries
	MaxBytes    int           // most memory the cache costs the process, collector's room included
	MinTTL      time.Duration // floor on every record's TTL
	MaxTTL      time.Duration // ceiling on every record's TTL
	NegativeTTL time.Duration // cap for NXDOMAIN and NODATA (RFC 2308)
	ServfailTTL time.Duration // how long a failure is remembered
	Prefetch    bool          // refresh popular entries before they expire
	ServeStale  bool          // answer from expired entries when upstreams fail (RFC 8767)
	StaleMaxAge time.Duration // how long past expiry an entry may be served
}

// Filter configures the DNS firewall.
type Filter struct {
	Blocklists    []string // file paths and http(s) URLs
	Allowlists    []string
	BlockResponse string        // "nxdomain" | "nodata" | "refused" | "null_ip"
	Refresh       time.Duration // how often URL lists are downloaded again
	CacheDir      string        // where the last good copy of each URL list is kept
	Required      bool          // no DNS answers until every list has loaded once
	Groups        []Group
}

// Group applies its own lists to a set of clients.
type Group struct {
	Name    string
	Clients []netip.Prefix
	// Names are the clients given by name: lower case, no trailing dot.
	// A client is in the group while its address has one of them.
	Names      []string
	Blocklists []string
	Allowlists []string
}

// QueryLog configures the per-query log, off by default for privacy.
type QueryLog struct {
	Enabled   bool
	Path      string // a file appended to, or "-" for standard output
	Anonymize bool   // client addresses truncated to /24 (IPv4) and /56 (IPv6)
}

// queryLogFields is the schema of the query_log: section.
func (d *decoder) queryLogFields(q *QueryLog) map[string]field {
	return map[string]field{
		"enabled":   value(d, &q.Enabled, "true or false", parseBool),
		"path":      value(d, &q.Path, `a file path or "-"`, parseQueryLogPath),
		"anonymize": value(d, &q.Anonymize, "true or false", parseBool),
	}
}

// parseAdmin reads the admin listener's address; "" turns it off.
func parseAdmin(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	return parseAddrPort(s, 0)
}

// cacheFields is the schema of the cache: section.
func (d *decoder) cacheFields(c *Cache) map[string]field {
	return map[string]field{
		"enabled":       value(d, &c.Enabled, "true or false", parseBool),
		"size":          value(d, &c.Size, "an integer", parseCount),
		"max_memory":    value(d, &c.MaxBytes, `a size like "32MiB"`, parseSize),
		"min_ttl":       value(d, &c.MinTTL, "a duration", parseNonNegativeDuration),
		"max_ttl":       value(d, &c.MaxTTL, "a duration", parsePositiveDuration),
		"negative_ttl":  value(d, &c.NegativeTTL, "a duration", parseNonNegativeDuration),
		"servfail_ttl":  value(d, &c.ServfailTTL, "a duration", parseNonNegativeDuration),
		"prefetch":      value(d, &c.Prefetch, "true or false", parseBool),
		"serve_stale":   value(d, &c.ServeStale, "true or false", parseBool),
		"stale_max_age": value(d, &c.StaleMaxAge, "a duration", parsePositiveDuration),
	}
}

// filterFields is the schema of the filter: section.
func (d *decoder) filterFields(f *Filter) map[string]field {
	return map[string]field{
		"blocklists":     values(d, &f.Blocklists, "a file path or URL", "", parseList),
		"allowlists":     values(d, &f.Allowlists, "a file path or URL", "", parseList),
		"block_response": value(d, &f.BlockResponse, "a block response", oneOf("nxdomain", "nodata", "refused", "null_ip")),
		"refresh":        value(d, &f.Refresh, "a duration", parsePositiveDuration),
		"cache_dir":      value(d, &f.CacheDir, "a directory", parseListSource),
		"required":       value(d, &f.Required, "true or false", parseBool),
		"groups":         d.groups(&f.Groups),
	}
}

// groups is the field for filter.groups, a list of client groups.
func (d *decoder) groups(dst *[]Group) field {
	return func(n *yaml.Node, p string) {
		out := make([]Group, len(n.Content))
		if !d.list(n, p, "", func(i int, n *yaml.Node, p string) {
			g := &out[i]
			var clients []groupClient
			d.mapping(n, p, map[string]field{
				"name": value(d, &g.Name, "a name", parseName),
				"clients": values(d, &clients, "a CIDR prefix, an IP address or a client name",
					"empty list; a group applies to the clients it lists", parseGroupClient),
				"blocklists": values(d, &g.Blocklists, "a file path or URL", "", parseList),
				"allowlists": values(d, &g.Allowlists, "a file path or URL", "", parseList),
			})
			if _, ok := d.lines[join(p, "clients")]; !ok && n.Kind == yaml.MappingNode {
				d.addf(n.Line, join(p, "clients"), "required: the client prefixes or names the group applies to")
			}
			for _, c := range clients {
				if c.name != "" {
					g.Names = append(g.Names, c.name)
				} else if c.prefix.IsValid() {
					g.Clients = append(g.Clients, c.prefix)
				}
			}
		}) {
			return
		}
		*dst = out
	}
}

// groupClient is one entry of a group's clients: a prefix or a name.
type groupClient struct {
	prefix netip.Prefix
	name   string
}

// parseGroupClient reads an entry of a group's clients: a CIDR prefix,
// an IP address, or a client's name (kids-tablet, kids-tablet.lan). A
// name may have underscores, which Windows puts in its DHCP names and
// the lease file keeps; its last label may not be all digits, or a
// mistyped address (192.168.1.300) would pass for a name.
func parseGroupClient(s string) (groupClient, error) {
	if p, err := parsePrefix(s); err == nil {
		return groupClient{prefix: p}, nil
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if strings.Contains(s, "/") || !isLocalName(strings.ReplaceAll(name, "_", "x")) {
		return groupClient{}, fmt.Errorf("%q is not a CIDR prefix, an IP address or a client name", s)
	}
	return groupClient{name: name}, nil
}

// localRecords is the field for local_records: a mapping of names to
// lists of addresses.
func (d *decoder) localRecords(dst *map[string][]netip.Addr) field {
	return func(n *yaml.Node, p string) {
		if n.Kind != yaml.MappingNode {
			d.addf(n.Line, p, "expected a mapping of names to address lists, got %s", describe(n))
			return
		}
		out := make(map[string][]netip.Addr, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], resolve(n.Content[i+1])
			name := strings.ToLower(strings.TrimSuffix(k.Value, "."))
			kp := fmt.Sprintf("%s[%s]", p, k.Value)
			if k.Kind != yaml.ScalarNode || !isLocalName(name) {
				d.addf(k.Line, kp, "%q is not a host name", k.Value)
				continue
			}
			if _, dup := out[name]; dup {
				d.addf(k.Line, kp, "repeated name")
				continue
			}
			var addrs []netip.Addr
			if isNull(v) {
				d.addf(k.Line, kp, "expected a list of addresses")
				continue
			}
			values(d, &addrs, "an IP address", "empty list; give at least one address", parseRecordAddr)(v, kp)
			out[name] = addrs
		}
		*dst = out
	}
}

// parseRecordAddr reads a local record's address; a zone (fe80::1%eth0)
// means nothing to other hosts.
func parseRecordAddr(s string) (netip.Addr, error) {
	a, err := parseIP(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

// parseBool accepts YAML's true and false.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", s)
}

// sizeUnits are the suffixes parseSize knows, longest first.
var sizeUnits = []struct {
	suffix string
	mult   int
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// parseSize reads a memory size: a whole number of bytes, or one with a
// unit such as "32MiB" or "64MB", up to maxSize.
func parseSize(s string) (int, error) {
	maxSize := min(int64(1)<<40, int64(math.MaxInt)) // 1 TiB, or what an int holds on 32-bit
	num, mult := strings.TrimSpace(s), 1
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || int64(n) > maxSize/int64(mult) {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with KiB, MiB, GiB, KB, MB, GB)", s)
	}
	return n * mult, nil
}

// parseListSource accepts a non-empty path or URL; the filter checks
// the rest when it loads the list.
func parseListSource(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("empty")
	}
	return s, nil
}
