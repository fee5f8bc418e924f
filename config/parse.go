package config

import (
	"go.yaml.in/yaml/v3"
)

// Parse decodes and validates the YAML configuration data on top of the
// built-in default: a key left out keeps its default, a list given replaces
// the default list. filename is used in error messages only. On error the
// *Config is nil and the error lists every Problem found.
func Parse(filename string, data []byte) (*Config, error) {
	if len(data) > maxFileSize {
		return nil, tooLarge(filename)
	}
	c := Default()
	if err := decode(c, filename, data); err != nil {
		return nil, err
	}
	return c, nil
}

// decode decodes data onto c and validates the result, returning every
// problem. It leaves c partly updated on error.
func decode(c *Config, file string, data []byte) error {
	d := newDecoder(file)
	if root := d.document(data); root != nil {
		d.config(root, c)
	}
	d.validate(c)
	return joinProblems(d.problems)
}

// config is the schema: every key of the file and where it goes in c.
func (d *decoder) config(n *yaml.Node, c *Config) {
	d.mapping(n, "", map[string]field{
		"listen": values(d, &c.Listen, "an address:port",
			"empty list; give at least one address, or leave the key out for the default", parseListen),
		"upstreams":     d.upstreams(&c.Upstreams),
		"policy":        value(d, &c.Policy, "a policy name", parsePolicy),
		"timeout":       value(d, &c.Timeout, "a duration", parsePositiveDuration),
		"query_timeout": value(d, &c.QueryTimeout, "a duration", parsePositiveDuration),
		"hedge_delay":   value(d, &c.HedgeDelay, "a duration", parseNonNegativeDuration),
		"connections": section(d, map[string]field{
			"max_per_upstream": value(d, &c.Connections.MaxPerUpstream, "an integer", parseCount),
			"idle_timeout":     value(d, &c.Connections.IdleTimeout, "a duration", parsePositiveDuration),
			"dial_timeout":     value(d, &c.Connections.DialTimeout, "a duration", parsePositiveDuration),
		}),
		"health": section(d, map[string]field{
			"interval":      value(d, &c.Health.Interval, "a duration", parsePositiveDuration),
			"down_interval": value(d, &c.Health.DownInterval, "a duration", parsePositiveDuration),
			"timeout":       value(d, &c.Health.Timeout, "a duration", parsePositiveDuration),
			"fall":          value(d, &c.Health.Fall, "an integer", parseCount),
			"rise":          value(d, &c.Health.Rise, "an integer", parseCount),
			"probe": func(n *yaml.Node, p string) {
				if pr, ok := parseScalar(d, n, p, `"NAME TYPE"`, parseProbe); ok {
					c.Health.ProbeName, c.Health.ProbeType = pr.name, pr.qtype
				}
			},
		}),
		"allow": values(d, &c.Allow, "a CIDR prefix",
			"empty list would refuse every client; allow all with 0.0.0.0/0 and ::/0", parsePrefix),
		"tcp": section(d, map[string]field{
			"idle_timeout":          value(d, &c.TCP.IdleTimeout, "a duration", parsePositiveDuration),
			"max_connections":       value(d, &c.TCP.MaxConnections, "an integer", parseCount),
			"max_per_client":        value(d, &c.TCP.MaxPerClient, "an integer", parseCount),
			"max_inflight_per_conn": value(d, &c.TCP.MaxInflightPerConn, "an integer", parseCount),
		}),
		"max_inflight":            value(d, &c.MaxInflight, "an integer", parseCount),
		"max_inflight_per_client": value(d, &c.MaxInflightPerClient, "an integer", parseCount),
		"max_udp_size":            value(d, &c.MaxUDPSize, "a size in octets", parseUDPSize),
		"rate_limit":              section(d, d.rateLimitFields(&c.RateLimit)),
		"cache":                   section(d, d.cacheFields(&c.Cache)),
		"filter":                  section(d, d.filterFields(&c.Filter)),
		"local_records":           d.localRecords(&c.LocalRecords),
		"admin":                   value(d, &c.Admin, `an address:port, or "" for none`, parseAdmin),
		"admin_hosts":             values(d, &c.AdminHosts, "a host name", "", parseAdminHost),
		"watch":                   value(d, &c.Watch, "true or false", parseBool),
		"query_log":               section(d, d.queryLogFields(&c.QueryLog)),
		"log": section(d, map[string]field{
			"level":  value(d, &c.Log.Level, "a log level", parseLogLevel),
			"format": value(d, &c.Log.Format, "a log format", parseLogFormat),
		}),
		// Forwarding and rebinding protection: config/forward.go.
		"forward":           d.forwards(&c.Forward),
		"router":            value(d, &c.Router, `an IP address[:port], or "" for none`, parseRouter),
		"rebind_protection": section(d, d.rebindFields(&c.Rebind)),
		"hosts_files":       values(d, &c.HostsFiles, "a file path", "", parseHostsFile),
		"hosts_domain":      value(d, &c.HostsDomain, `a domain, or "" for none`, parseHostsDomain),
	})
}
