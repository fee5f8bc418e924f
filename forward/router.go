// Package forward owns where a query goes below the cache: to the
// servers of the forwarding rule whose domain holds its name (the
// router's DNS for lan, a corporate server for corp.example), or to the
// public upstreams. It decides only that. The rules' servers and the
// public upstreams are resolvers it is given (upstream.Selectors);
// answers come back through the cache and the filter above it like any
// other; rebinding protection wraps the public side (package rebind).
package forward

import (
	"context"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// Rule sends the names at or under Domains to Resolver.
type Rule struct {
	Domains  []string // any case, trailing dot optional
	Resolver resolver.Resolver
}

// Options configures a Router.
type Options struct {
	// Rules are the forwarding rules; the longest domain that holds a
	// name decides, and of two rules naming one domain the first.
	Rules []Rule
	// SingleLabel is where a host name of one label (nas.) goes when no
	// rule holds it: the router's DNS, which knows its DHCP clients by
	// such names. Nil: such names get NXDOMAIN here, never going public.
	SingleLabel resolver.Resolver
	// Public resolves every other name.
	Public resolver.Resolver
}

// Router sends each request to the resolver its name belongs to. A name
// under a rule goes to that rule's resolver alone: when it fails, the
// client gets its failure (SERVFAIL with an Extended DNS Error), never
// a public upstream's answer, so that names of the house do not leak.
type Router struct {
	rules       []resolver.Resolver
	table       table
	singleLabel resolver.Resolver
	public      resolver.Resolver
}

var _ resolver.Resolver = (*Router)(nil)

// New builds a Router.
func New(opts Options) *Router {
	r := &Router{table: table{}, singleLabel: opts.SingleLabel, public: opts.Public}
	for i, rule := range opts.Rules {
		r.rules = append(r.rules, rule.Resolver)
		for _, d := range rule.Domains {
			r.table.add(d, i)
		}
	}
	return r
}

// Resolve implements resolver.Resolver.
func (r *Router) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	name := lowerFQDN(req.Name)
	if i := r.table.lookup(name); i >= 0 {
		return r.rules[i].Resolve(ctx, req)
	}
	if singleLabel(name) && !infrastructure(req.Qtype) {
		if r.singleLabel != nil {
			return r.singleLabel.Resolve(ctx, req)
		}
		// As the filter answers its locally served zones: with
		// authority, since no one else may answer for the name.
		m := req.Reply(dns.RcodeNameError)
		m.Authoritative, m.RecursionAvailable = true, true
		req.Info.SetLocal()
		return resolver.Response{Msg: m}, nil
	}
	return r.public.Resolve(ctx, req)
}

// singleLabel reports whether name, an FQDN, is a host name of one
// label: what a client asks for a bare "nas" once its search list is
// spent. The root is not.
func singleLabel(name string) bool {
	if name == "." {
		return false
	}
	_, end := dns.NextLabel(name, 0)
	return end
}

// infrastructure reports whether a single-label query of qtype is about
// a top-level domain rather than a host: a validating stub asks the DS
// and DNSKEY of com., tools the NS and SOA. Those go public; every other
// type is a host lookup of the house.
func infrastructure(qtype uint16) bool {
	switch qtype {
	case dns.TypeDS, dns.TypeDNSKEY, dns.TypeNS, dns.TypeSOA:
		return true
	}
	return false
}
