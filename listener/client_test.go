package listener

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestResolverSeesClient: the request a resolver gets names the client's
// address, over each transport, for per-client rules downstream.
func TestResolverSeesClient(t *testing.T) {
	seen := make(chan netip.Addr, 2)
	s, _ := startServer(t, Options{Resolver: resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
		seen <- req.Client
		return resolver.Response{Msg: answerA(req.Msg(), 1)}, nil
	})})
	for tr, c := range clients(t, s) {
		c.send(t, packQuery(t, 1, "example.com.", dns.TypeA, 0))
		c.recv(t)
		if a := <-seen; a != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("%s: resolver saw client %v, want 127.0.0.1", tr, a)
		}
	}
}

// TestClientNormalised: the client address in a Request is normalised
// once, as parsed: an IPv4 address mapped into IPv6 (a dual-stack
// socket's view) is unmapped and an IPv6 zone (a link-local client's) is
// dropped, so that configured prefixes match it.
func TestClientNormalised(t *testing.T) {
	s, err := New(Options{Addrs: []netip.AddrPort{loopback}, Resolver: echo,
		Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}})
	if err != nil {
		t.Fatal(err)
	}
	raw := packQuery(t, 1, "example.com.", dns.TypeA, 0)
	for _, tc := range []struct{ from, want string }{
		{"[::ffff:192.168.1.5]:5353", "192.168.1.5"},
		{"[fe80::1%eth0]:5353", "fe80::1"},
		{"[2001:db8::7]:5353", "2001:db8::7"},
		{"192.168.1.6:5353", "192.168.1.6"},
	} {
		var q query
		if !s.parse(&q, s.live.Load(), raw, netip.MustParseAddrPort(tc.from), resolver.UDP) || q.reject != nil {
			t.Fatalf("%s: not parsed", tc.from)
		}
		if q.req.Client != netip.MustParseAddr(tc.want) {
			t.Errorf("from %s: client %v, want %s", tc.from, q.req.Client, tc.want)
		}
	}
}
