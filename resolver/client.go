package resolver

import (
	"context"
	"net/netip"
)

// clientKey is the context key under which WithClient stores the client's
// address; unexported so that only WithClient and ClientFrom use it.
type clientKey struct{}

// WithClient returns a copy of ctx that carries addr, the address of the
// client whose query is being resolved, so that middleware (the filter's
// per-client groups, a query log) can tell clients apart. An IPv4 address
// mapped into IPv6 (::ffff:192.0.2.1), as a dual-stack socket reports it,
// is stored as the plain IPv4 address so that it matches IPv4 prefixes.
func WithClient(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientKey{}, addr.Unmap())
}

// ClientFrom returns the client address that WithClient put in ctx; ok is
// false when there is none (a query made by dotproxy itself, or a caller
// that does not set it).
func ClientFrom(ctx context.Context) (addr netip.Addr, ok bool) {
	addr, ok = ctx.Value(clientKey{}).(netip.Addr)
	return addr, ok && addr.IsValid()
}
