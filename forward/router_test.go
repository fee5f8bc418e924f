package forward

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// named is a resolver that answers with an empty NOERROR and records its
// name as the upstream, so that a test sees which resolver was asked.
func named(name string) resolver.Resolver {
	return resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
		req.Info.SetUpstream(name)
		return resolver.Response{Msg: req.Reply(dns.RcodeSuccess)}, nil
	})
}

func request(name string, qtype uint16) *resolver.Request {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	return resolver.NewRequest(q)
}

// TestRouterMatch: the longest domain holding a name decides, on label
// boundaries, in any case, with or without the trailing dot in the
// rule; everything else goes public.
func TestRouterMatch(t *testing.T) {
	r := New(Options{
		Rules: []Rule{
			{Domains: []string{"LAN.", "fritz.box", "168.192.in-addr.arpa"}, Resolver: named("router")},
			{Domains: []string{"corp.example"}, Resolver: named("corp")},
			{Domains: []string{"eng.corp.example", "in-addr.arpa"}, Resolver: named("eng")},
			{Domains: []string{"lan"}, Resolver: named("second-lan")}, // the first rule keeps lan
		},
		Public: named("public"),
	})
	for _, tc := range []struct{ name, want string }{
		{"nas.lan.", "router"},
		{"lan.", "router"},
		{"NAS.Lan.", "router"},
		{"nas.lan", "router"}, // a name without its trailing dot
		{"a.b.c.lan.", "router"},
		{"plan.", ""}, // not lan's (label boundary): a single label, answered here
		{"www.plan.", "public"},
		{"nas.plan.", "public"},
		{"lan.example.", "public"},
		{"fritz.box.", "router"},
		{"fritz.box.example.", "public"},
		{"10.1.168.192.in-addr.arpa.", "router"},
		{"168.192.in-addr.arpa.", "router"},
		{"1.1.169.192.in-addr.arpa.", "eng"}, // in-addr.arpa's rule, not 168.192's
		{"268.192.in-addr.arpa.", "eng"},     // 268 is not 168
		{"8.8.8.8.in-addr.arpa.", "eng"},
		{"in-addr.arpa.", "eng"},
		{"arpa.", ""}, // a single label
		{"www.corp.example.", "corp"},
		{"x.eng.corp.example.", "eng"}, // longest wins
		{"eng.corp.example.", "eng"},
		{"xeng.corp.example.", "corp"},
		{"example.com.", "public"},
		{".", "public"}, // the root
		{`a\.lan.example.`, "public"},
		{`a\.b.lan.`, "router"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(tc.name, dns.TypeA)
			req.Name = tc.name // SetQuestion would not keep a name without its dot
			if _, err := r.Resolve(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if req.Info.Upstream != tc.want {
				t.Errorf("%s went to %q, want %q", tc.name, req.Info.Upstream, tc.want)
			}
		})
	}
}

// TestRouterSingleLabel: a host name of one label never goes public: to
// the router when there is one, else NXDOMAIN here. DS, DNSKEY, NS and
// SOA of one label are about a TLD and go public.
func TestRouterSingleLabel(t *testing.T) {
	for _, tc := range []struct {
		name        string
		qtype       uint16
		router      bool
		want        string // the resolver asked; "" for none
		wantNXLocal bool
	}{
		{"nas.", dns.TypeA, false, "", true},
		{"NAS.", dns.TypeAAAA, false, "", true},
		{"nas.", dns.TypeA, true, "router", false},
		{"nas.", dns.TypeMX, true, "router", false},
		{"com.", dns.TypeDS, false, "public", false},
		{"com.", dns.TypeDNSKEY, true, "public", false},
		{"com.", dns.TypeNS, true, "public", false},
		{"org.", dns.TypeSOA, false, "public", false},
		{".", dns.TypeNS, false, "public", false},
		{"nas.example.", dns.TypeA, true, "public", false},
	} {
		t.Run(tc.name+dns.TypeToString[tc.qtype], func(t *testing.T) {
			opts := Options{Public: named("public")}
			if tc.router {
				opts.SingleLabel = named("router")
			}
			req := request(tc.name, tc.qtype)
			resp, err := New(opts).Resolve(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if req.Info.Upstream != tc.want {
				t.Errorf("went to %q, want %q", req.Info.Upstream, tc.want)
			}
			if nx := resp.Rcode() == dns.RcodeNameError && req.Info.Local; nx != tc.wantNXLocal {
				t.Errorf("rcode %s local %v, want local NXDOMAIN %v", dns.RcodeToString[resp.Rcode()], req.Info.Local, tc.wantNXLocal)
			}
		})
	}
}

// TestRouterNoLeak: when a rule's resolver fails, its failure is the
// answer; the public resolver is never asked.
func TestRouterNoLeak(t *testing.T) {
	failed := &resolver.Error{Code: dns.ExtendedErrorCodeNetworkError, Text: "upstreams unreachable"}
	asked := false
	r := New(Options{
		Rules: []Rule{{Domains: []string{"lan"}, Resolver: resolver.Func(func(context.Context, *resolver.Request) (resolver.Response, error) {
			return resolver.Response{}, failed
		})}},
		Public: resolver.Func(func(context.Context, *resolver.Request) (resolver.Response, error) {
			asked = true
			return resolver.Response{}, nil
		}),
	})
	if _, err := r.Resolve(context.Background(), request("nas.lan.", dns.TypeA)); err != failed {
		t.Errorf("got %v, want the rule's failure", err)
	}
	if asked {
		t.Error("the public resolver was asked for a forwarded name")
	}
}

func TestRouterDomains(t *testing.T) {
	r := New(Options{Rules: []Rule{{Domains: RouterDomains(), Resolver: named("router")}}, Public: named("public")})
	for name, want := range map[string]string{
		"nas.lan.": "router", "nas.home.arpa.": "router", "x.internal.": "router", "fritz.box.": "router",
		"1.1.168.192.in-addr.arpa.": "router", "1.0.0.10.in-addr.arpa.": "router",
		"1.0.16.172.in-addr.arpa.": "router", "1.0.31.172.in-addr.arpa.": "router", "1.0.32.172.in-addr.arpa.": "public",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.": "router",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.": "router",
		"printer.local.": "public", // mDNS: the filter answers it, not the router
	} {
		req := request(name, dns.TypePTR)
		if _, err := r.Resolve(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if req.Info.Upstream != want {
			t.Errorf("%s went to %q, want %q", name, req.Info.Upstream, want)
		}
	}
}
