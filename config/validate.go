package config

import (
	"fmt"
)

// validate checks what no single value can: relations between keys. A key
// whose own value was already reported is left out of these checks, so one
// mistake gives one problem.
func (d *decoder) validate(c *Config) {
	d.timeouts(c)
	d.uniqueUpstreamNames(c.Upstreams)
	d.hostLookups(c)
	d.uniqueListen(c)
	d.startup(c)
	d.uniqueForwardDomains(c.Forward)
}

// timeouts checks that a query outlives one attempt: otherwise failover to
// a second upstream could never happen.
func (d *decoder) timeouts(c *Config) {
	if d.failed["timeout"] || d.failed["query_timeout"] || c.QueryTimeout > c.Timeout {
		return
	}
	if _, set := d.lines["query_timeout"]; !set {
		if line, set := d.lines["timeout"]; set {
			d.addf(line, "timeout", "must be shorter than query_timeout (%v), got %v", c.QueryTimeout, c.Timeout)
			return
		}
	}
	d.addf(d.lines["query_timeout"], "query_timeout", "must be longer than timeout (%v), got %v", c.Timeout, c.QueryTimeout)
}

// uniqueUpstreamNames reports a name used twice at its second use. Names
// key the upstreams in logs and health state; a clash would merge two.
func (d *decoder) uniqueUpstreamNames(ups []Upstream) {
	first := map[string]int{}
	for i, u := range ups {
		if u.Name == "" {
			continue // reported as missing or invalid
		}
		if j, dup := first[u.Name]; dup {
			p := fmt.Sprintf("upstreams[%d].name", i)
			d.addf(d.lines[p], p, "%q is already the name of upstreams[%d]", u.Name, j)
			continue
		}
		first[u.Name] = i
	}
}

// uniqueListen reports an address listed twice, which would fail to bind
// at start-up with a less helpful message.
func (d *decoder) uniqueListen(c *Config) {
	first := map[string]int{}
	for i, ap := range c.Listen {
		if !ap.IsValid() {
			continue // reported already
		}
		if j, dup := first[ap.String()]; dup {
			p := fmt.Sprintf("listen[%d]", i)
			d.addf(d.lines[p], p, "%v is already listen[%d]", ap, j)
			continue
		}
		first[ap.String()] = i
	}
}
