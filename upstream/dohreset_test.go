package upstream

import (
	"errors"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// TestDoHStreamReset: a server that resets one request's stream (as its
// per-request timeout does) while the connection stays fine fails that
// query alone: ErrStreamReset, counted as a bad answer, not resent, and
// the connection keeps serving the queries around it, over HTTP/2 and
// HTTP/3 alike.
func TestDoHStreamReset(t *testing.T) {
	const rounds = 10
	for _, tr := range dohTransports {
		t.Run(tr.String(), func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoH(t, ca, tr, nil)
			u := newDoHUpstream(t, ca, srv, Options{})
			for i := range rounds {
				if _, err := u.Exchange(ctxFor(t, testTimeout), query(indexName(i), dns.TypeA)); err != nil {
					t.Fatalf("query %d: %v", i, err)
				}
				srv.ResetNext(1)
				_, err := u.Exchange(ctxFor(t, testTimeout), query("reset."+indexName(i), dns.TypeA))
				if !errors.Is(err, ErrStreamReset) || errors.Is(err, ErrConnClosed) {
					t.Fatalf("reset query %d: %v, want ErrStreamReset alone", i, err)
				}
			}
			if n := srv.Accepts(); n != 1 {
				t.Errorf("%d connections for %d good queries and %d reset streams, want 1", n, rounds, rounds)
			}
			if n := len(srv.Requests()); n != 2*rounds {
				t.Errorf("server got %d requests, want %d: a reset query is not resent", n, 2*rounds)
			}
			st := u.Stats()
			if st.Errors[ErrorBadAnswer] != rounds || st.Errors.Total() != rounds {
				t.Errorf("errors %v, want %d bad answers and nothing else", st.Errors, rounds)
			}
			if st.Answers != rounds || st.Queries != 2*rounds {
				t.Errorf("%d queries, %d answers; want %d, %d", st.Queries, st.Answers, 2*rounds, rounds)
			}
			if n := u.OpenConns(); n != 1 {
				t.Errorf("%d connections open, want the one", n)
			}
		})
	}
}
