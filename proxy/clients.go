package proxy

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/clients"
	"github.com/dotproxy/dotproxy/forward"
	"github.com/dotproxy/dotproxy/resolver"
)

// newNames builds the client names, which live across reloads: each
// lookup asks the generation current returns then, so that names follow
// the hosts files and forward rules of the configuration in use.
func newNames(current func() *generation, log *slog.Logger) *clients.Names {
	return clients.New(clients.Options{
		Hosts: func(addr netip.Addr) string {
			if g := current(); g != nil {
				return g.filter.HostName(addr)
			}
			return ""
		},
		Reverse: resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
			if g := current(); g != nil {
				return g.reverse.Resolve(ctx, req)
			}
			return refused.Resolve(ctx, req)
		}),
		Logger: log,
	})
}

// reverse returns the forward rules alone, for the PTR lookups that name
// clients: a reverse name no rule holds is refused here, never sent to a
// public upstream, which has no business learning the house's addresses
// (and could not name them).
func (fw *forwarding) reverse() resolver.Resolver {
	opts := forward.Options{Public: refused}
	for _, rule := range fw.rules {
		opts.Rules = append(opts.Rules, forward.Rule{Domains: rule.domains, Resolver: rule.selector})
	}
	return forward.New(opts)
}

// refused answers REFUSED: no forward rule holds the name.
var refused = resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
	return resolver.Response{Msg: req.Reply(dns.RcodeRefused)}, nil
})
