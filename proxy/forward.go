package proxy

import (
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/dotproxy/dotproxy/admin"
	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/forward"
	"github.com/dotproxy/dotproxy/rebind"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// forwardServer is a forward rule's server as the selector and the
// status page see it: *upstream.Plain or, with tls_name, *upstream.Upstream.
type forwardServer interface {
	upstream.Member
	Stats() upstream.UpstreamStats
}

// forwardRule is one forward rule (or router:'s) built: its servers and
// the selector that fails over between them.
type forwardRule struct {
	domains  []string
	servers  []forwardServer
	selector *upstream.Selector
	router   bool // router:'s rule, whose selector also takes single-label names
}

// forwarding is every rule of one configuration. A reload whose rules,
// router and selection settings are unchanged keeps it, with its
// servers' RTTs, health and connections.
type forwarding struct {
	rules []*forwardRule
}

// newForwarding builds the rules of cfg's forward: list and router:.
func newForwarding(cfg *config.Config, clock *upstream.Clock, log *slog.Logger) (*forwarding, error) {
	fw := &forwarding{}
	for i, fc := range cfg.Forward {
		rule := &forwardRule{domains: fc.Domains}
		fw.rules = append(fw.rules, rule)
		for _, addr := range fc.Servers {
			s, err := newForwardServer(fc, addr, cfg, clock, log)
			if err != nil {
				fw.close()
				return nil, fmt.Errorf("forward[%d]: %w", i, err)
			}
			rule.servers = append(rule.servers, s)
		}
	}
	if cfg.Router.IsValid() {
		p, err := upstream.NewPlain(upstream.PlainOptions{Name: "router", Addr: cfg.Router, Logger: log})
		if err != nil {
			fw.close()
			return nil, err
		}
		fw.rules = append(fw.rules, &forwardRule{domains: forward.RouterDomains(), servers: []forwardServer{p}, router: true})
	}
	for _, rule := range fw.rules {
		policy, err := upstream.NewPolicy(cfg.Policy)
		if err != nil {
			fw.close()
			return nil, err
		}
		members := make([]upstream.Member, len(rule.servers))
		for i, s := range rule.servers {
			members[i] = s
		}
		rule.selector, err = upstream.NewSelector(upstream.SelectorOptions{
			Policy: policy, AttemptTimeout: cfg.Timeout, HedgeDelay: cfg.HedgeDelay, Logger: log,
		}, members...)
		if err != nil {
			fw.close()
			return nil, err
		}
	}
	return fw, nil
}

// newForwardServer builds one server of rule fc: DNS over TLS, verified
// as an upstream is, when the rule has a tls_name; plain DNS otherwise.
// It is named by its address, as the query log shows it.
func newForwardServer(fc config.Forward, addr netip.AddrPort, cfg *config.Config, clock *upstream.Clock, log *slog.Logger) (forwardServer, error) {
	if !fc.TLS() {
		return upstream.NewPlain(upstream.PlainOptions{Name: addr.String(), Addr: addr, Logger: log})
	}
	return newUpstream(config.Upstream{Name: addr.String(), Address: addr, TLSName: fc.TLSName,
		SPKIPins: fc.SPKIPins, CAFile: fc.CAFile}, cfg, nil, clock, log)
}

// router returns the chain's bottom: the forward rules, and public for
// every other name, behind rebinding protection when it is on.
func (fw *forwarding) router(cfg *config.Config, public resolver.Resolver) resolver.Resolver {
	if cfg.Rebind.Enabled {
		public = rebind.New(public, rebind.Options{Allow: cfg.Rebind.Allow})
	}
	return fw.route(public)
}

// route returns the forward rules, with router:'s taking single-label
// names, over public for every other name.
func (fw *forwarding) route(public resolver.Resolver) *forward.Router {
	opts := forward.Options{Public: public}
	for _, rule := range fw.rules {
		opts.Rules = append(opts.Rules, forward.Rule{Domains: rule.domains, Resolver: rule.selector})
		if rule.router {
			opts.SingleLabel = rule.selector
		}
	}
	return forward.New(opts)
}

// close closes the rules' TLS connections.
func (fw *forwarding) close() {
	if fw == nil {
		return
	}
	for _, rule := range fw.rules {
		for _, s := range rule.servers {
			if u, ok := s.(*upstream.Upstream); ok {
				u.Close()
			}
		}
	}
}

// sameForwarding reports whether b's rules are built exactly as a's.
func sameForwarding(a, b *config.Config) bool {
	return reflect.DeepEqual(a.Forward, b.Forward) && a.Router == b.Router && a.Policy == b.Policy &&
		a.Timeout == b.Timeout && a.HedgeDelay == b.HedgeDelay && a.Connections == b.Connections
}

// forwardedDomains are the domains cfg sends to forward rules, which the
// filter must not answer locally.
func forwardedDomains(cfg *config.Config) []string {
	var d []string
	for _, f := range cfg.Forward {
		d = append(d, f.Domains...)
	}
	if cfg.Router.IsValid() {
		d = append(d, forward.RouterDomains()...)
	}
	return slices.Clip(d)
}

// status is the rules and their servers' state for the status page;
// empty, not nil, when there are none, so that the JSON has a list.
func (fw *forwarding) status() []admin.ForwardStatus {
	out := []admin.ForwardStatus{}
	for _, rule := range fw.rules {
		fs := admin.ForwardStatus{Domains: rule.domains}
		for _, s := range rule.servers {
			// No prober checks these: a failing streak is what "down"
			// can mean for them.
			us := upstreamStatus(s.Stats())
			us.Healthy = us.Healthy && !s.Standing(time.Now()).Failing
			fs.Servers = append(fs.Servers, us)
		}
		out = append(out, fs)
	}
	return out
}

// logForwarding logs each forward rule and router: at start, as the
// upstreams are, and whether rebinding protection is on.
func logForwarding(log *slog.Logger, cfg *config.Config) {
	for _, f := range cfg.Forward {
		log.Info("forward rule", "domains", f.Domains, "servers", f.Servers, "tls_name", f.TLSName)
	}
	if cfg.Router.IsValid() {
		log.Info("router", "addr", cfg.Router)
	}
	log.Info("rebind protection", "enabled", cfg.Rebind.Enabled, "allow", cfg.Rebind.Allow)
}

// sameLocalNames reports whether a and b give the filter the same local
// names besides local_records: the forwarded domains it must not answer,
// and the hosts files.
func sameLocalNames(a, b *config.Config) bool {
	return slices.Equal(forwardedDomains(a), forwardedDomains(b)) &&
		slices.Equal(a.HostsFiles, b.HostsFiles) && a.HostsDomain == b.HostsDomain
}
