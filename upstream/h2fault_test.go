package upstream

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// TestH2WireGoAway: a server that sends GOAWAY (as one going down, or
// one with a cap on requests a connection does) answers the streams up to
// its last one; the queries above it are resent on a new connection and
// none is lost, and no stream opens on the old one once the client has
// read the GOAWAY.
func TestH2WireGoAway(t *testing.T) {
	tests := []struct {
		name     string
		behavior dottest.H2RawBehavior
		cold     bool // no query before: the connection is dialed for those under test
		n, par   int
		wantConn int64 // connections at least
	}{
		{name: "after 5 streams, 20 at once", n: 20, par: 20, wantConn: 2,
			behavior: dottest.H2RawBehavior{GoAwayAfter: 5, GoAwayConns: 1}},
		{name: "after 5 streams, then close, 20 at once", n: 20, par: 20, wantConn: 2,
			behavior: dottest.H2RawBehavior{GoAwayAfter: 5, GoAwayConns: 1, GoAwayClose: true}},
		{name: "after 1 stream, 8 at once", n: 8, par: 8, wantConn: 2,
			behavior: dottest.H2RawBehavior{GoAwayAfter: 1, GoAwayConns: 1}},
		{name: "after 5 streams, 20 at once, on a new connection", n: 20, par: 20, wantConn: 2, cold: true,
			behavior: dottest.H2RawBehavior{GoAwayAfter: 5, GoAwayConns: 1}},
		{name: "every connection after 3 streams, one at a time", n: 12, par: 1, wantConn: 4,
			behavior: dottest.H2RawBehavior{GoAwayAfter: 3}},
		{name: "every connection after 3 streams, then close, one at a time", n: 12, par: 1, wantConn: 4,
			behavior: dottest.H2RawBehavior{GoAwayAfter: 3, GoAwayClose: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startH2Raw(t, ca, dottest.H2RawOptions{Behavior: tt.behavior})
			u := newH2Upstream(t, ca, srv, Options{MaxConns: 1})
			ctx := ctxFor(t, testTimeout)
			warm := 0
			if !tt.cold && tt.par > 1 {
				// The first stream of the connection, below GOAWAY's
				// last, so that the queries under test take a
				// connection that was not dialed for them.
				warm = 1
				wantAllAnswered(t, exchangeAll(ctx, u, 1000, 1, 1))
			}
			wantAllAnswered(t, exchangeAll(ctx, u, 0, tt.n, tt.par))
			wantNoViolations(t, srv)
			perConn := srv.RequestsPerConn()
			if int64(len(perConn)) < tt.wantConn {
				t.Errorf("%d connections, want %d at least", len(perConn), tt.wantConn)
			}
			if len(perConn) > 0 && perConn[0] != int64(tt.behavior.GoAwayAfter) {
				t.Errorf("%d requests read on the first connection, want the %d GOAWAY kept", perConn[0], tt.behavior.GoAwayAfter)
			}
			t.Logf("%d streams above GOAWAY's last, over %d connections", srv.Ignored(), len(perConn))
			if srv.Ignored() == 0 {
				t.Error("no stream opened above GOAWAY's last: nothing was resent, the test tested nothing")
			}
			if n := srv.Answered(); n != int64(tt.n+warm) {
				t.Errorf("server answered %d requests, want %d: each query once", n, tt.n+warm)
			}
		})
	}
}

// TestH2WireStreamFaults: a stream the server resets (refused, or failed
// before or in the middle of its body) fails that query alone, with
// ErrStreamReset, while the queries in flight beside it on the same
// connection are answered on it.
func TestH2WireStreamFaults(t *testing.T) {
	const beside = 10
	const faulty = "fault.test."
	for _, fault := range []dottest.H2Fault{dottest.FaultRefuse, dottest.FaultReset, dottest.FaultResetMidBody} {
		t.Run(faultName(fault), func(t *testing.T) {
			gate := make(chan struct{})
			var once sync.Once
			open := func() { once.Do(func() { close(gate) }) }
			t.Cleanup(open)
			byIndex := answerByIndex()
			ca := dottest.NewCA(t)
			srv := startH2Raw(t, ca, dottest.H2RawOptions{
				Handler: func(q *dns.Msg, reply func(*dns.Msg)) {
					if q.Question[0].Name != faulty {
						<-gate // held in flight until the faulty query is over
					}
					byIndex(q, reply)
				},
				Behavior: dottest.H2RawBehavior{Faults: map[string]dottest.H2FaultRule{faulty: {Fault: fault}}},
			})
			u := newH2Upstream(t, ca, srv, Options{MaxConns: 1})
			ctx := ctxFor(t, testTimeout)
			done := make(chan []error, 1)
			go func() { done <- exchangeAll(ctx, u, 0, beside, beside) }()
			waitFor(t, "the queries beside it in flight", func() bool { return srv.Requests() == beside })

			_, err := u.Exchange(ctx, query(faulty, dns.TypeA))
			open()
			if !errors.Is(err, ErrStreamReset) || errors.Is(err, ErrConnClosed) {
				t.Errorf("faulty query: %v, want ErrStreamReset alone", err)
			}
			wantAllAnswered(t, <-done)
			wantNoViolations(t, srv)
			if n := srv.Accepts(); n != 1 {
				t.Errorf("%d connections, want 1: a stream's fault is not the connection's", n)
			}
		})
	}
}

func faultName(f dottest.H2Fault) string {
	return map[dottest.H2Fault]string{dottest.FaultRefuse: "REFUSED_STREAM", dottest.FaultReset: "INTERNAL_ERROR",
		dottest.FaultResetMidBody: "INTERNAL_ERROR mid-body", dottest.FaultCloseMidBody: "close mid-body"}[f]
}

// TestH2WireCloseMidBody: a server that closes the connection in the
// middle of an answer loses no query: the one cut short and those in
// flight beside it are resent on a new connection.
func TestH2WireCloseMidBody(t *testing.T) {
	const beside = 6
	for _, cold := range []bool{false, true} {
		t.Run(map[bool]string{false: "reused connection", true: "new connection"}[cold], func(t *testing.T) {
			gate := make(chan struct{})
			var once sync.Once
			open := func() { once.Do(func() { close(gate) }) }
			t.Cleanup(open)
			byIndex := answerByIndex()
			cut := indexName(beside)
			ca := dottest.NewCA(t)
			srv := startH2Raw(t, ca, dottest.H2RawOptions{
				Handler: func(q *dns.Msg, reply func(*dns.Msg)) {
					if q.Question[0].Name != cut && q.Question[0].Name != indexName(1000) {
						<-gate
					}
					byIndex(q, reply)
				},
				Behavior: dottest.H2RawBehavior{Faults: map[string]dottest.H2FaultRule{
					cut: {Fault: dottest.FaultCloseMidBody, Times: 1}}},
			})
			u := newH2Upstream(t, ca, srv, Options{MaxConns: 1})
			ctx := ctxFor(t, testTimeout)
			warm := int64(0)
			if !cold {
				warm = 1
				wantAllAnswered(t, exchangeAll(ctx, u, 1000, 1, 1))
			}
			done := make(chan []error, 1)
			go func() { done <- exchangeAll(ctx, u, 0, beside, beside) }()
			waitFor(t, "the queries beside it in flight", func() bool { return srv.Requests() == beside+warm })
			err := exchangeIndex(ctx, u, beside)
			open()
			if cold {
				// A query on the connection dialed for it that closes
				// under it is not resent (resendOnce): it fails at once,
				// as the connection's loss, for the selector to take it
				// to another upstream. The others took the connection
				// reused and are resent. The next query dials anew.
				if err != nil {
					t.Errorf("query cut short: %v, want it resent and answered", err)
				}
				for i, err := range <-done {
					if err != nil && !errors.Is(err, ErrConnClosed) {
						t.Errorf("query %d beside it: %v, want an answer or ErrConnClosed", i, err)
					}
				}
				wantAllAnswered(t, exchangeAll(ctx, u, 2000, 1, 1))
			} else {
				if err != nil {
					t.Errorf("query cut short: %v, want it resent and answered", err)
				}
				wantAllAnswered(t, <-done)
			}
			wantNoViolations(t, srv)
			if n := srv.Accepts(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		})
	}
}

// TestH2WireBadAnswers: a response that is not a DNS answer (a status
// other than 200, another content type, a body longer than any DNS
// message, however framed) is ErrBadAnswer, soon, not a hang.
func TestH2WireBadAnswers(t *testing.T) {
	long := make([]byte, 70000)
	tests := []struct {
		name     string
		behavior dottest.H2RawBehavior
		settings bool
	}{
		{name: "status 502", behavior: dottest.H2RawBehavior{Response: dottest.Response{Status: http.StatusBadGateway}}},
		{name: "status 502 with a DNS answer", behavior: dottest.H2RawBehavior{
			Response: dottest.Response{Status: http.StatusBadGateway}, ContentLength: true}},
		{name: "text/html", behavior: dottest.H2RawBehavior{Response: dottest.Response{ContentType: "text/html"}}},
		{name: "70,000 octets", behavior: dottest.H2RawBehavior{Response: dottest.Response{Body: long}}},
		{name: "70,000 octets, content-length", behavior: dottest.H2RawBehavior{
			Response: dottest.Response{Body: long}, ContentLength: true}},
		{name: "70,000 octets in small frames", behavior: dottest.H2RawBehavior{
			Response: dottest.Response{Body: long}, DataChunk: 1000, Padding: 10}},
		{name: "70,000 octets then trailers", behavior: dottest.H2RawBehavior{
			Response: dottest.Response{Body: long}, Trailers: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startH2Raw(t, ca, dottest.H2RawOptions{Behavior: tt.behavior})
			u := newH2Upstream(t, ca, srv, Options{})
			start := time.Now()
			_, err := u.Exchange(ctxFor(t, testTimeout), query(indexName(1), dns.TypeA))
			if !errors.Is(err, ErrBadAnswer) {
				t.Errorf("got %v after %v, want ErrBadAnswer", err, time.Since(start).Round(time.Millisecond))
			}
			wantNoViolations(t, srv)
			// The connection serves on: the answer was bad, not it.
			srv.SetBehavior(dottest.H2RawBehavior{})
			wantAllAnswered(t, exchangeAll(ctxFor(t, testTimeout), u, 2, 1, 1))
		})
	}
}

// TestH2WireSilent: a connection that goes silent (no answer, no PING
// ACK, as a resolver gone without a FIN) is given up within pingAfter
// plus pingTimeout, whether a query waits on it or it is idle; the query
// on it and later ones go out on a new connection.
func TestH2WireSilent(t *testing.T) {
	const margin = time.Second // timers and a loaded machine
	for _, inFlight := range []bool{true, false} {
		t.Run(map[bool]string{true: "query in flight", false: "idle"}[inFlight], func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startH2Raw(t, ca, dottest.H2RawOptions{})
			u := newH2Upstream(t, ca, srv, Options{MaxConns: 1, IdleTimeout: time.Minute})
			ctx := ctxFor(t, testTimeout)
			wantAllAnswered(t, exchangeAll(ctx, u, 0, 1, 1))

			silent := time.Now()
			srv.Silence()
			done := make(chan error, 1)
			if inFlight {
				go func() { done <- exchangeIndex(ctx, u, 1) }()
			} else {
				done <- nil
			}
			deadline := pingAfter + pingTimeout + margin
			for srv.Closed() == 0 {
				if time.Since(silent) > deadline {
					t.Fatalf("the silent connection still open after %v, want it given up within %v",
						time.Since(silent).Round(time.Millisecond), deadline)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("given up after %v", time.Since(silent).Round(time.Millisecond))
			if err := <-done; err != nil {
				t.Errorf("query on the silent connection: %v, want it resent and answered", err)
			}
			wantAllAnswered(t, exchangeAll(ctx, u, 2, 3, 3))
			if n := srv.Accepts(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			wantNoViolations(t, srv)
		})
	}
}

// TestH2WirePing: the server's own PING is ACKed.
func TestH2WirePing(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startH2Raw(t, ca, dottest.H2RawOptions{})
	u := newH2Upstream(t, ca, srv, Options{})
	wantAllAnswered(t, exchangeAll(ctxFor(t, testTimeout), u, 0, 1, 1))
	for range 3 {
		acks := srv.PingAcks()
		srv.Ping()
		waitFor(t, "the PING's ACK", func() bool { return srv.PingAcks() > acks })
	}
	wantNoViolations(t, srv)
}
