package upstream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestBusyConnUsedWhileDialing: when the connection in use is busy
// enough that the pool opens another, queries keep going out on the busy
// one meanwhile; one that cannot be dialed (the resolver is at its
// connection limit) costs no query.
func TestBusyConnUsedWhileDialing(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
		if !strings.HasPrefix(q.Question[0].Name, "hold") {
			dottest.Answer("192.0.2.1")(q, reply)
		}
	})
	u := newUpstream(t, ca, srv, Options{MaxConns: 2})
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("warm.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	// Queries the resolver holds on to fill the connection.
	ctx := ctxFor(t, testTimeout)
	for i := range busyThreshold {
		go u.Exchange(ctx, query("hold"+indexName(i), dns.TypeA))
	}
	waitFor(t, "the connection to fill", func() bool { return srv.Queries() == busyThreshold+1 })
	srv.StopAccepting()

	for i := range 3 {
		if _, err := u.Exchange(ctxFor(t, testTimeout), query(indexName(i), dns.TypeA)); err != nil {
			t.Errorf("query %d on a busy connection: %v", i, err)
		}
	}
	if n := u.OpenConns(); n != 1 {
		t.Errorf("%d connections open, want the busy one", n)
	}
}

// TestExpiredCallerKeepsConn: a caller whose deadline has passed by the
// time its query would be written gets its context error; the connection
// other queries share is not torn down for it.
func TestExpiredCallerKeepsConn(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
		if q.Question[0].Name == "slow.example." {
			dottest.Delay(200*time.Millisecond, dottest.Answer("192.0.2.1"))(q, reply)
			return
		}
		dottest.Answer("192.0.2.1")(q, reply)
	})
	u := newUpstream(t, ca, srv, Options{})
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("warm.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	slow := make(chan error, 1)
	go func() {
		_, err := u.Exchange(ctxFor(t, testTimeout), query("slow.example.", dns.TypeA))
		slow <- err
	}()
	waitFor(t, "the slow query to reach the server", func() bool { return srv.Queries() == 2 })

	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := u.Exchange(expired, query("late.example.", dns.TypeA)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired caller: got %v, want its deadline", err)
	}
	if err := <-slow; err != nil {
		t.Errorf("slow query: %v", err)
	}
	if n := srv.Accepts(); n != 1 {
		t.Errorf("server accepted %d connections: the shared one was torn down", n)
	}
}
