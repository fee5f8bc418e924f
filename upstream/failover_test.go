package upstream

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/miekg/dns"
)

// longAttempt is an attempt timeout no test waits for: an answer that
// comes from the second upstream while the first is still within it came
// through hedging (or failover on an error), not through the first
// attempt timing out.
const longAttempt = 30 * time.Second

// TestFailover: when the first upstream (in ordered policy) cannot answer
// usably, the second one's answer comes back.
func TestFailover(t *testing.T) {
	const secondAddr = "192.0.2.2"
	tests := []struct {
		name string
		// first sets up the first upstream's server.
		first func(t *testing.T, ca *dottest.CA) *dottest.Server
		// wantNoQueries: the first server must never have read a query.
		wantNoQueries bool
	}{
		{name: "connection refused", first: func(t *testing.T, ca *dottest.CA) *dottest.Server {
			srv := startServer(t, ca, nil)
			srv.Kill()
			return srv
		}, wantNoQueries: true},
		{name: "silent: hedged", first: handler(dottest.Silent())},
		{name: "slow: hedged", first: handler(dottest.Delay(2*time.Second, dottest.Answer("192.0.2.1")))},
		{name: "SERVFAIL", first: handler(dottest.Rcode(dns.RcodeServerFailure))},
		{name: "REFUSED", first: handler(dottest.Rcode(dns.RcodeRefused))},
		{name: "bad certificate", first: func(t *testing.T, _ *dottest.CA) *dottest.Server {
			return dottest.Start(t, dottest.Options{Cert: dottest.SelfSigned(t, testTLSName)})
		}, wantNoQueries: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			first := tt.first(t, ca)
			second := startServer(t, ca, dottest.Answer(secondAddr))
			s := newSelector(t, SelectorOptions{Policy: ordered{}, AttemptTimeout: longAttempt},
				newUpstream(t, ca, first, Options{}), newUpstream(t, ca, second, Options{}))

			r, err := resolve(s, ctxFor(t, testTimeout), query("www.example.", dns.TypeA))
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != dns.RcodeSuccess || addrOf(t, r) != netip.MustParseAddr(secondAddr) {
				t.Errorf("got %s %v, want the second upstream's answer", dns.RcodeToString[r.Rcode], r.Answer)
			}
			if tt.wantNoQueries && first.Queries() != 0 {
				t.Errorf("first server read %d queries", first.Queries())
			}
		})
	}
}

func handler(h dottest.Handler) func(*testing.T, *dottest.CA) *dottest.Server {
	return func(t *testing.T, ca *dottest.CA) *dottest.Server { return startServer(t, ca, h) }
}

// TestNoUpstreamAnswers: when no upstream answers usably the caller learns
// why: an upstream's own SERVFAIL when there is one, else an error with
// the Extended DNS Error the listener puts in its SERVFAIL.
func TestNoUpstreamAnswers(t *testing.T) {
	servfail := func(q *dns.Msg, reply func(*dns.Msg)) {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeServerFailure)
		m.SetEdns0(ednsUDPSize, false)
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSKEYMissing}}
		reply(m)
	}
	tests := []struct {
		name    string
		start   func(t *testing.T, ca *dottest.CA) *dottest.Server
		timeout time.Duration
		wantEDE uint16 // 0: want the upstream's SERVFAIL instead of an error
	}{
		{name: "all refuse connections", start: func(t *testing.T, ca *dottest.CA) *dottest.Server {
			srv := startServer(t, ca, nil)
			srv.Kill()
			return srv
		}, timeout: testTimeout, wantEDE: dns.ExtendedErrorCodeNetworkError},
		{name: "all silent", start: handler(dottest.Silent()), timeout: 500 * time.Millisecond,
			wantEDE: dns.ExtendedErrorCodeNoReachableAuthority},
		{name: "all SERVFAIL", start: handler(servfail), timeout: testTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			ups := []*Upstream{
				newUpstream(t, ca, tt.start(t, ca), Options{}),
				newUpstream(t, ca, tt.start(t, ca), Options{}),
			}
			s := newSelector(t, SelectorOptions{Policy: ordered{}, AttemptTimeout: longAttempt}, ups...)
			q := query("www.example.", dns.TypeA)
			q.Id = 777
			r, err := resolve(s, ctxFor(t, tt.timeout), q)
			if tt.wantEDE == 0 {
				if err != nil {
					t.Fatal(err)
				}
				ede := resolver.EDE(r)
				if r.Rcode != dns.RcodeServerFailure || r.Id != 777 || ede == nil || ede.InfoCode != dns.ExtendedErrorCodeDNSKEYMissing {
					t.Errorf("got %v, want the upstream's SERVFAIL with its EDE", r)
				}
				return
			}
			var re *resolver.Error
			if !errors.As(err, &re) {
				t.Fatalf("got %v, %v; want a *resolver.Error", r, err)
			}
			if re.Code != tt.wantEDE {
				t.Errorf("EDE %d (%s), want %d", re.Code, re, tt.wantEDE)
			}
			if !errors.Is(err, ErrNoUpstream) {
				t.Errorf("%v does not wrap ErrNoUpstream", err)
			}
		})
	}
}

// TestResendCountedOnce: a first attempt whose connection closes under it
// is resent on a fresh connection and counted as one query, answered.
func TestResendCountedOnce(t *testing.T) {
	ca := dottest.NewCA(t)
	var srv *dottest.Server
	var drop atomic.Bool
	answer := dottest.Answer("192.0.2.1")
	srv = startServer(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
		if drop.CompareAndSwap(true, false) {
			srv.DropConns() // the query was read: close under it
			return
		}
		answer(q, reply)
	})
	u := newUpstream(t, ca, srv, Options{})
	s := newSelector(t, SelectorOptions{}, u)
	if _, err := resolve(s, ctxFor(t, testTimeout), query("a.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	drop.Store(true)
	if _, err := resolve(s, ctxFor(t, testTimeout), query("b.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	st := u.Stats()
	if st.Queries != 2 || st.Answers != 2 || st.Errors.Total() != 0 || st.Abandoned != 0 {
		t.Errorf("queries %d, answers %d, errors %d, abandoned %d; want 2, 2, 0, 0",
			st.Queries, st.Answers, st.Errors.Total(), st.Abandoned)
	}
}
