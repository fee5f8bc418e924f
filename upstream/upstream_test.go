package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

func newTestUpstream(t *testing.T, ca *dottest.CA, srv *dottest.Server, name string) *Upstream {
	t.Helper()
	u, err := New(Options{Name: name, Addr: srv.Addr(), TLSName: "dns.test", RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}

func query(name string) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	return q
}

func TestExchangeBasic(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test")})
	u := newTestUpstream(t, ca, srv, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q := query("Example.COM")
	q.Id = 4242
	r, err := u.Exchange(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if r.Id != 4242 || r.Question[0].Name != "Example.COM." || len(r.Answer) != 1 {
		t.Fatalf("bad answer %v", r)
	}
	if srv.Padded() != 1 {
		t.Fatalf("query not padded to 128")
	}
}
