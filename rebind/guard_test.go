package rebind

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// answering returns a resolver that answers every query with rrs.
func answering(rrs ...string) resolver.Resolver {
	return resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
		m := req.Reply(dns.RcodeSuccess)
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		req.Info.SetUpstream("public")
		return resolver.Response{Msg: m}, nil
	})
}

func TestGuard(t *testing.T) {
	for _, tc := range []struct {
		name    string
		qname   string
		answer  []string
		refused bool
	}{
		{"public IPv4", "www.example.", []string{"www.example. 300 IN A 93.184.215.14"}, false},
		{"private IPv4", "evil.example.", []string{"evil.example. 300 IN A 192.168.1.1"}, true},
		{"10/8", "evil.example.", []string{"evil.example. 300 IN A 10.0.0.1"}, true},
		{"172.16/12", "evil.example.", []string{"evil.example. 300 IN A 172.31.255.1"}, true},
		{"172.32 is public", "ok.example.", []string{"ok.example. 300 IN A 172.32.0.1"}, false},
		{"loopback", "evil.example.", []string{"evil.example. 300 IN A 127.0.0.1"}, true},
		{"link-local", "evil.example.", []string{"evil.example. 300 IN A 169.254.169.254"}, true},
		{"0.0.0.0", "evil.example.", []string{"evil.example. 300 IN A 0.0.0.0"}, true},
		{"shared space is not", "ts.example.", []string{"ts.example. 300 IN A 100.101.102.103"}, false},
		{"public IPv6", "www.example.", []string{"www.example. 300 IN AAAA 2606:2800:21f:cb07:6820:80da:af6b:8b2c"}, false},
		{"ULA IPv6", "evil.example.", []string{"evil.example. 300 IN AAAA fd00::1"}, true},
		{"link-local IPv6", "evil.example.", []string{"evil.example. 300 IN AAAA fe80::1"}, true},
		{"loopback IPv6", "evil.example.", []string{"evil.example. 300 IN AAAA ::1"}, true},
		{"IPv4-mapped IPv6", "evil.example.", []string{"evil.example. 300 IN AAAA ::ffff:192.168.1.1"}, true},
		{"IPv4-mapped public", "ok.example.", []string{"ok.example. 300 IN AAAA ::ffff:8.8.8.8"}, false},
		{"CNAME chain to private", "evil.example.", []string{
			"evil.example. 300 IN CNAME a.evil.example.", "a.evil.example. 300 IN CNAME b.cdn.example.",
			"b.cdn.example. 300 IN A 192.168.178.1"}, true},
		{"CNAME chain to public", "www.example.", []string{
			"www.example. 300 IN CNAME cdn.example.", "cdn.example. 300 IN A 93.184.215.14"}, false},
		{"HTTPS hint", "evil.example.", []string{`evil.example. 300 IN HTTPS 1 . ipv4hint=192.168.1.1`}, true},
		{"HTTPS public hint", "ok.example.", []string{`ok.example. 300 IN HTTPS 1 . ipv6hint=2001:db8::1`}, false},
		{"allowed domain", "abc.def.plex.direct.", []string{"abc.def.plex.direct. 300 IN A 192.168.1.5"}, false},
		{"allowed domain itself, any case", "PLEX.Direct.", []string{"plex.direct. 300 IN A 192.168.1.5"}, false},
		// The origin is the name asked; a CNAME into an allowed domain does
		// not make a page's own name allowed.
		{"CNAME into an allowed domain", "evil.example.", []string{
			"evil.example. 300 IN CNAME 192-168-1-1.x.plex.direct.", "192-168-1-1.x.plex.direct. 300 IN A 192.168.1.1"}, true},
		{"not allowed by a longer name", "plex.direct.evil.example.", []string{"plex.direct.evil.example. 300 IN A 192.168.1.5"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(answering(tc.answer...), Options{Allow: []string{"plex.direct."}})
			q := new(dns.Msg)
			q.SetQuestion(tc.qname, dns.TypeA)
			q.SetEdns0(1232, false)
			req := resolver.NewRequest(q)
			resp, err := g.Resolve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			refused := resp.Rcode() == dns.RcodeRefused
			if refused != tc.refused || req.Info.Rebind != tc.refused {
				t.Fatalf("rcode %s, Info.Rebind %v; want refused %v", dns.RcodeToString[resp.Rcode()], req.Info.Rebind, tc.refused)
			}
			if !refused {
				return
			}
			ede := resolver.EDE(resp.Msg)
			if ede == nil || ede.InfoCode != dns.ExtendedErrorCodeBlocked || ede.ExtraText != Text {
				t.Errorf("EDE %v, want 15 Blocked", ede)
			}
			if len(resp.Msg.Answer) != 0 {
				t.Errorf("the refusal carries the answer %v", resp.Msg.Answer)
			}
		})
	}
}

// TestGuardPassesFailures: an error from the upstreams passes untouched.
func TestGuardPassesFailures(t *testing.T) {
	fail := &resolver.Error{Code: dns.ExtendedErrorCodeNetworkError}
	g := New(resolver.Func(func(context.Context, *resolver.Request) (resolver.Response, error) {
		return resolver.Response{}, fail
	}), Options{})
	q := new(dns.Msg)
	q.SetQuestion("x.example.", dns.TypeA)
	if _, err := g.Resolve(context.Background(), resolver.NewRequest(q)); err != fail {
		t.Errorf("got %v", err)
	}
}

func TestInside(t *testing.T) {
	if inside(net.IP{1, 2, 3}) {
		t.Error("a 3-octet IP is inside")
	}
}
