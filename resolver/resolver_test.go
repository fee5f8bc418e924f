package resolver

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) Middleware {
		return func(next Resolver) Resolver {
			return Func(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
				order = append(order, name)
				return next.Resolve(ctx, q)
			})
		}
	}
	end := Func(func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		order = append(order, "end")
		return new(dns.Msg).SetReply(q), nil
	})
	q := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
	if _, err := Chain(end, mw("filter"), mw("cache")).Resolve(context.Background(), q); err != nil {
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
			m := ServFail(q, tc.err)
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
