package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) Middleware {
		return func(next Resolver) Resolver {
			return Func(func(ctx context.Context, req *Request) (Response, error) {
				order = append(order, name)
				return next.Resolve(ctx, req)
			})
		}
	}
	end := Func(func(_ context.Context, req *Request) (Response, error) {
		order = append(order, "end")
		return Response{Msg: req.Reply(dns.RcodeSuccess)}, nil
	})
	q := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
	if _, err := Chain(end, mw("filter"), mw("cache")).Resolve(context.Background(), NewRequest(q)); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(order); got != "[filter cache end]" {
		t.Fatalf("order %s, want [filter cache end]", got)
	}
}

func TestServFail(t *testing.T) {
	cause := errors.New("dial tcp: connection refused")
	wrapped := fmt.Errorf("selector: %w", &Error{Code: dns.ExtendedErrorCodeNetworkError, Text: "upstreams unreachable", Err: cause})
	for _, tc := range []struct {
		name    string
		edns    bool
		err     error
		wantEDE bool
	}{
		{"ede with edns", true, wrapped, true},
		{"no ede without edns", false, wrapped, false},
		{"plain error", true, cause, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
			q.Id = 77
			if tc.edns {
				q.SetEdns0(1232, false)
			}
			m := ServFail(NewRequest(q), tc.err)
			if m.Rcode != dns.RcodeServerFailure || m.Id != 77 || !m.Response || len(m.Question) != 1 {
				t.Fatalf("bad SERVFAIL: %v", m)
			}
			e := EDE(m)
			if (e != nil) != tc.wantEDE {
				t.Fatalf("EDE present %v, want %v", e != nil, tc.wantEDE)
			}
			if e != nil && (e.InfoCode != dns.ExtendedErrorCodeNetworkError || e.ExtraText != "upstreams unreachable") {
				t.Fatalf("EDE %v", e)
			}
			if !tc.edns && m.IsEdns0() != nil {
				t.Fatal("OPT record sent to a client without EDNS")
			}
		})
	}
	if !errors.Is(wrapped, cause) {
		t.Fatal("Error does not unwrap to its cause")
	}
}

func TestRequestMsg(t *testing.T) {
	q := new(dns.Msg).SetQuestion("Example.COM.", dns.TypeMX)
	q.Id = 4242
	q.CheckingDisabled = true
	q.SetEdns0(4096, true)
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  *Request
	}{
		{"unpacked from the wire", &Request{Wire: wire, ID: 4242, Name: "Example.COM.", Qtype: dns.TypeMX, Qclass: dns.ClassINET, RD: true, CD: true, EDNS: true, DO: true}},
		{"built from the fields", &Request{ID: 4242, Name: "Example.COM.", Qtype: dns.TypeMX, Qclass: dns.ClassINET, RD: true, CD: true, EDNS: true, DO: true}},
		{"given", NewRequest(q)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.req.Msg()
			if m != tc.req.Msg() {
				t.Fatal("Msg unpacked twice")
			}
			opt := m.IsEdns0()
			if m.Id != 4242 || !m.RecursionDesired || !m.CheckingDisabled || len(m.Question) != 1 ||
				m.Question[0] != q.Question[0] || opt == nil || !opt.Do() {
				t.Fatalf("Msg:\n%v\nwant the query\n%v", m, q)
			}
			r := tc.req.Reply(dns.RcodeNameError)
			if r.Id != 4242 || !r.Response || !r.RecursionDesired || !r.CheckingDisabled ||
				r.Rcode != dns.RcodeNameError || r.Question[0] != q.Question[0] {
				t.Fatalf("Reply: %v", r)
			}
		})
	}
}

func TestResponseForms(t *testing.T) {
	m := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
	m.Response, m.Rcode = true, dns.RcodeNameError
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Response{{Msg: m}, {Wire: wire}} {
		if r.Rcode() != dns.RcodeNameError {
			t.Fatalf("Rcode %d", r.Rcode())
		}
		got, err := r.Unpack()
		if err != nil || got.Rcode != dns.RcodeNameError || got.Question[0] != m.Question[0] {
			t.Fatalf("Unpack: %v, %v", got, err)
		}
	}
}

func TestTransportLogsByName(t *testing.T) {
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "transport", TCP)
	if !strings.Contains(buf.String(), `"transport":"tcp"`) {
		t.Fatalf("logged %s", buf.String())
	}
}
