package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestListHTTPClientResolvesThroughUpstreams: list downloads look their
// host up through the given resolver, never the system's.
func TestListHTTPClientResolvesThroughUpstreams(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "0.0.0.0 ads.example\n")
	}))
	t.Cleanup(srv.Close)
	var asked []string
	r := resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
		q := req.Msg()
		asked = append(asked, dns.TypeToString[q.Question[0].Qtype]+" "+q.Question[0].Name)
		m := new(dns.Msg).SetReply(q)
		if q.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
		return resolver.Response{Msg: m}, nil
	})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	resp, err := listHTTPClient(r).Get("http://lists.invalid:" + port + "/hosts.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "ads.example") {
		t.Fatalf("body %q", body)
	}
	if strings.Join(asked, ",") != "A lists.invalid.,AAAA lists.invalid." {
		t.Fatalf("resolver asked %v", asked)
	}

	nx := resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
		return resolver.Response{Msg: req.Reply(dns.RcodeNameError)}, nil
	})
	if _, err := listHTTPClient(nx).Get("http://lists.invalid:" + port + "/"); err == nil ||
		!strings.Contains(err.Error(), "resolving lists.invalid through the upstreams") {
		t.Fatalf("unresolvable host: %v", err)
	}
}
