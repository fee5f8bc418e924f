package config

import (
	"fmt"
	"strings"

	"github.com/dotproxy/dotproxy/filter"
	"github.com/dotproxy/dotproxy/forward"
)

// This file holds the rule for an upstream named by a host: where the
// lookup of its name goes, and whether it can find an address at all.
// Start-up applies the same rule (LookupPath), so -check and start-up
// agree.

// lookupRoute is where the lookup of an upstream's host name goes: the
// way a client's query for the name goes below the cache, so that a name
// of the house never reaches a public upstream.
type lookupRoute int

const (
	routePublic  lookupRoute = iota // the other upstreams
	routeForward                    // a forward rule's servers, or router:'s
	routeLocal                      // answered here with addresses: a local record, localhost
	routeNowhere                    // answered here with NXDOMAIN: no rule takes the house's name
)

// lookupRoute returns where host's lookup goes and, for routeNowhere, the
// locally served zone that holds it ("" for a single-label name).
func (c *Config) lookupRoute(host string) (lookupRoute, string) {
	singleLabel := !strings.Contains(host, ".")
	for _, f := range c.Forward {
		for _, d := range f.Domains {
			if inDomain(host, d) {
				return routeForward, ""
			}
		}
	}
	if c.Router.IsValid() {
		if singleLabel {
			return routeForward, ""
		}
		for _, d := range forward.RouterDomains() {
			if inDomain(host, d) {
				return routeForward, ""
			}
		}
	}
	if _, ok := c.LocalRecords[host]; ok {
		return routeLocal, ""
	}
	for _, z := range filter.LocalZones() {
		if z = strings.TrimSuffix(z, "."); !inDomain(host, z) {
			continue
		}
		if z+"." == filter.LoopbackZone {
			return routeLocal, ""
		}
		return routeNowhere, z
	}
	if singleLabel {
		return routeNowhere, ""
	}
	return routePublic, ""
}

// inDomain reports whether name is domain or under it; both lower case
// without the trailing dot.
func inDomain(name, domain string) bool {
	return name == domain || strings.HasSuffix(name, "."+domain)
}

// LookupPath reports whether c.Upstreams[i] can find its address: it has
// an IP address or a bootstrap list; or its host name goes to a forward
// rule, router: or a local record; or it is a public name and another
// upstream is anchored to look it up through.
func LookupPath(c *Config, i int) bool { return c.lookupProblem(i) == "" }

// lookupProblem says why c.Upstreams[i] cannot find its address; "" when
// it can.
func (c *Config) lookupProblem(i int) string {
	u := c.Upstreams[i]
	if u.Host == "" || len(u.Bootstrap) > 0 {
		return ""
	}
	switch route, zone := c.lookupRoute(u.Host); route {
	case routeForward, routeLocal:
		return ""
	case routeNowhere:
		if zone == "" {
			return fmt.Sprintf("%s is a single-label name, which never goes to a public resolver, and no router: takes it: "+
				"give its IP addresses in bootstrap, set router:, or add a forward rule or local record for it", u.Host)
		}
		return fmt.Sprintf("%s is in %s, which is answered here and never sent to a public resolver, and no forward rule takes it: "+
			"give its IP addresses in bootstrap, or add a forward rule or local record for it", u.Host, zone)
	}
	for j, o := range c.Upstreams {
		if j != i && o.Anchored() {
			return ""
		}
	}
	return fmt.Sprintf("%s is a host name, and there is no way to find its address without plaintext DNS: "+
		"give its IP addresses in bootstrap, or list an upstream with an IP address to look it up through", u.Host)
}

// hostLookups reports each upstream named by a host that would have no
// way to find its address (the system resolver is never asked: it would
// ask in plaintext, and a name of the house may not go public).
func (d *decoder) hostLookups(c *Config) {
	for i := range c.Upstreams {
		if why := c.lookupProblem(i); why != "" {
			p := fmt.Sprintf("upstreams[%d].address", i)
			d.addf(d.lines[p], p, "%s", why)
		}
	}
}
