package listener

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestResolverSeesClient: the context a resolver gets names the client's
// address, over each transport, for per-client rules downstream.
func TestResolverSeesClient(t *testing.T) {
	seen := make(chan netip.Addr, 2)
	s, _ := startServer(t, Options{Resolver: resolver.Func(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		a, ok := resolver.ClientFrom(ctx)
		if !ok {
			t.Error("no client address in the context")
		}
		seen <- a
		return answerA(q, 1), nil
	})})
	for tr, c := range clients(t, s) {
		c.send(t, packQuery(t, 1, "example.com.", dns.TypeA, 0))
		c.recv(t)
		if a := <-seen; a != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("%s: resolver saw client %v, want 127.0.0.1", tr, a)
		}
	}
}
