package proxy

import (
	"errors"
	"fmt"

	"github.com/dotproxy/dotproxy/admin"
	"github.com/dotproxy/dotproxy/upstream"
)

// errNoHealthyUpstream is readiness's answer while every upstream is down.
var errNoHealthyUpstream = errors.New("no upstream is healthy")

// ready reports whether the proxy can answer: its listeners are bound,
// the filter's required lists (filter.required) have loaded, and at
// least one upstream is healthy. It backs /readyz.
func (p *Proxy) ready() error {
	if len(p.listener.UDPAddrs()) == 0 {
		return errors.New("listeners not bound")
	}
	if err := p.gen.Load().filter.Ready(); err != nil {
		return err
	}
	for _, u := range p.gen.Load().ups {
		if u.Healthy() {
			return nil
		}
	}
	return errNoHealthyUpstream
}

// status is the snapshot the admin page and /api/status show.
func (p *Proxy) status() admin.Status {
	g := p.gen.Load()
	st := admin.Status{Version: p.version, StartedAt: p.started, Queries: p.metrics.Queries(),
		Upstreams: []admin.UpstreamStatus{}}
	for _, u := range g.ups {
		st.Upstreams = append(st.Upstreams, upstreamStatus(u.Stats()))
	}
	st.Forward = g.fwd.status()
	if g.cache != nil {
		cs := g.cache.Stats()
		st.Cache = &admin.CacheStatus{Hits: cs.Hits, Misses: cs.Misses, Stale: cs.Stale, Entries: cs.Entries}
	}
	fs := g.filter.Stats()
	rules := 0
	for _, l := range fs.Lists {
		if !l.Allow {
			rules += l.Rules
		}
	}
	st.Filter = &admin.FilterStatus{Blocked: fs.Blocked, Rules: rules, Pending: g.filter.Pending()}
	st.Clients = p.topClients()
	return st
}

// shownClients is how many of the busiest clients the status page shows.
const shownClients = 10

// topClients returns the busiest clients with their names.
func (p *Proxy) topClients() []admin.ClientStatus {
	out := []admin.ClientStatus{}
	if p.top == nil {
		return out
	}
	for _, c := range p.top.Top(shownClients) {
		out = append(out, admin.ClientStatus{Address: c.Addr.String(), Name: p.names.ClientName(c.Addr), Queries: c.Queries})
	}
	return out
}

// newAdmin builds the admin listener for the configured address, or nil
// when it is off.
func (p *Proxy) newAdmin() (*admin.Server, error) {
	addr := p.gen.Load().cfg.Admin
	if !addr.IsValid() {
		return nil, nil
	}
	s, err := admin.New(admin.Options{Addr: addr, Metrics: p.metrics.Handler(), Status: p.status, Ready: p.ready,
		Hosts: func() []string { return p.gen.Load().cfg.AdminHosts }, Logger: p.log})
	if err != nil {
		return nil, fmt.Errorf("building admin listener: %w", err)
	}
	return s, nil
}

// upstreamStatus is us as the status page shows it.
func upstreamStatus(us upstream.UpstreamStats) admin.UpstreamStatus {
	return admin.UpstreamStatus{
		Name:        us.Name,
		Address:     us.Address,
		Transport:   us.Transport,
		TLSName:     us.TLSName,
		Healthy:     us.Healthy,
		SRTT:        us.SRTT,
		Queries:     us.Answers,
		Errors:      us.Errors.Total(),
		LastError:   us.LastError,
		LastErrorAt: us.LastErrorAt,
		OpenConns:   us.OpenConns,
	}
}
