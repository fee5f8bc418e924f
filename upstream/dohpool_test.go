package upstream

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestDoHMaxConns: under a load that keeps many queries in flight, the
// upstream opens a second connection and no more than MaxConns, and
// every query gets its own answer.
func TestDoHMaxConns(t *testing.T) {
	const maxConns, queries = 2, 3 * busyThreshold
	for _, tr := range dohTransports {
		t.Run(tr.String(), func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoH(t, ca, tr, dottest.Delay(20*time.Millisecond, answerByIndex()))
			u := newDoHUpstream(t, ca, srv, Options{MaxConns: maxConns})
			// The first connection, so that the load below finds it
			// busy rather than waiting on its dial.
			if _, err := u.Exchange(ctxFor(t, testTimeout), query(indexName(queries), dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range queries {
				wg.Go(func() {
					r, err := u.Exchange(ctxFor(t, testTimeout), query(indexName(i), dns.TypeA))
					if err != nil {
						t.Errorf("query %d: %v", i, err)
						return
					}
					if got := addrOf(t, r); got != indexAddr(i) {
						t.Errorf("query %d got %v, another's answer", i, got)
					}
					if n := u.OpenConns(); n > maxConns {
						t.Errorf("%d connections open, over the cap of %d", n, maxConns)
					}
				})
			}
			wg.Wait()
			if n := srv.Accepts(); n != maxConns {
				t.Errorf("server accepted %d connections, want %d", n, maxConns)
			}
		})
	}
}

// TestDoHResend: a query that meets a reused connection the server
// closes under it is sent once more, on a fresh connection; a second
// failure there is the query's error.
func TestDoHResend(t *testing.T) {
	tests := []struct {
		name        string
		drop        int
		wantErr     bool
		wantAccepts int64
	}{
		{name: "closed once, answered on a fresh connection", drop: 1, wantAccepts: 2},
		{name: "closed twice, no third try", drop: 2, wantErr: true, wantAccepts: 2},
	}
	for _, tr := range dohTransports {
		for _, tt := range tests {
			t.Run(tr.String()+"/"+tt.name, func(t *testing.T) {
				ca := dottest.NewCA(t)
				srv := startDoH(t, ca, tr, nil)
				u := newDoHUpstream(t, ca, srv, Options{})
				if _, err := u.Exchange(ctxFor(t, testTimeout), query("warm.example.", dns.TypeA)); err != nil {
					t.Fatal(err)
				}
				srv.DropNext(tt.drop)
				_, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA))
				if tt.wantErr {
					if err == nil || !strings.Contains(err.Error(), "resending") {
						t.Errorf("error %v, want one that says the resend failed too", err)
					}
					if k := u.Stats().Errors; k[ErrorConnection] != 1 || k.Total() != 1 {
						t.Errorf("errors %v, want one connection error", k)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				if n := srv.Accepts(); n != tt.wantAccepts {
					t.Errorf("server accepted %d connections, want %d", n, tt.wantAccepts)
				}
				// The warm-up, the query, its resend.
				if n := len(srv.Requests()); n != 3 {
					t.Errorf("server got %d requests, want 3", n)
				}
			})
		}
	}
}

// TestDoHConnsDropped: after the server closes every connection between
// queries (as an idle timeout does), the next query is answered.
func TestDoHConnsDropped(t *testing.T) {
	for _, tr := range dohTransports {
		t.Run(tr.String(), func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoH(t, ca, tr, nil)
			u := newDoHUpstream(t, ca, srv, Options{})
			for i := range 3 {
				if _, err := u.Exchange(ctxFor(t, testTimeout), query(indexName(i), dns.TypeA)); err != nil {
					t.Fatalf("query %d: %v", i, err)
				}
				srv.DropConns()
			}
			if st := u.Stats(); st.Errors.Total() != 0 {
				t.Errorf("errors %v after dropped connections", st.Errors)
			}
		})
	}
}

// TestDoHCancel: a query whose context ends while the server holds it
// returns at once, counted as abandoned when cancelled and as a timeout
// when its deadline passed; the connection stays for the next query.
func TestDoHCancel(t *testing.T) {
	tests := []struct {
		name     string
		deadline bool
		want     error
	}{
		{name: "cancelled", want: context.Canceled},
		{name: "deadline", deadline: true, want: context.DeadlineExceeded},
	}
	for _, tr := range dohTransports {
		for _, tt := range tests {
			t.Run(tr.String()+"/"+tt.name, func(t *testing.T) {
				ca := dottest.NewCA(t)
				srv := startDoH(t, ca, tr, func(q *dns.Msg, reply func(*dns.Msg)) {
					if q.Question[0].Name != "hold.example." {
						dottest.Answer("192.0.2.1")(q, reply)
					}
				})
				u := newDoHUpstream(t, ca, srv, Options{})
				if _, err := u.Exchange(ctxFor(t, testTimeout), query("warm.example.", dns.TypeA)); err != nil {
					t.Fatal(err)
				}
				const deadline = 300 * time.Millisecond
				ctx, cancel := context.WithCancel(context.Background())
				if tt.deadline {
					ctx, cancel = context.WithTimeout(context.Background(), deadline)
				}
				defer cancel()
				done := make(chan error, 1)
				go func() {
					_, err := u.Exchange(ctx, query("hold.example.", dns.TypeA))
					done <- err
				}()
				if !tt.deadline {
					waitFor(t, "the query to reach the server", func() bool { return srv.Queries() == 2 })
					cancel()
				}
				select {
				case err := <-done:
					if !errors.Is(err, tt.want) {
						t.Errorf("error %v, want %v", err, tt.want)
					}
				case <-time.After(deadline + time.Second):
					t.Fatal("Exchange did not return within a second of its context's end")
				}
				st := u.Stats()
				if tt.deadline && st.Errors[ErrorTimeout] != 1 {
					t.Errorf("errors %v, want one timeout", st.Errors)
				}
				if !tt.deadline && (st.Abandoned != 1 || st.Errors.Total() != 0) {
					t.Errorf("abandoned %d, errors %v: want one abandoned", st.Abandoned, st.Errors)
				}
				if _, err := u.Exchange(ctxFor(t, testTimeout), query("after.example.", dns.TypeA)); err != nil {
					t.Fatal(err)
				}
				if n := srv.Accepts(); n != 1 {
					t.Errorf("%d connections accepted, want the one", n)
				}
			})
		}
	}
}

// TestDoHIdleClose: a connection idle for IdleTimeout is closed, and the
// next query dials another; Close closes what is open.
func TestDoHIdleClose(t *testing.T) {
	for _, tr := range dohTransports {
		t.Run(tr.String(), func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoH(t, ca, tr, nil)
			u := newDoHUpstream(t, ca, srv, Options{IdleTimeout: 50 * time.Millisecond})
			for i := range 2 {
				if _, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA)); err != nil {
					t.Fatalf("query %d: %v", i, err)
				}
				waitFor(t, "the idle connection to close", func() bool { return u.OpenConns() == 0 })
			}
			if n := srv.Accepts(); n != 2 {
				t.Errorf("server accepted %d connections, want 2", n)
			}
			if _, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			u.Close()
			if n := u.OpenConns(); n != 0 {
				t.Errorf("%d connections open after Close", n)
			}
			if _, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA)); !errors.Is(err, ErrConnClosed) {
				t.Errorf("query after Close: %v, want ErrConnClosed", err)
			}
		})
	}
}

// TestDoHHammer: many goroutines share one DoH upstream while the server
// drops its connections now and then; every query gets its own answer or
// an error, never another's answer (run with -race).
func TestDoHHammer(t *testing.T) {
	const workers, perWorker = 16, 40
	for _, tr := range dohTransports {
		t.Run(tr.String(), func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoH(t, ca, tr, answerByIndex())
			u := newDoHUpstream(t, ca, srv, Options{MaxConns: 2})
			var wg sync.WaitGroup
			var mu sync.Mutex
			answered := 0
			for w := range workers {
				wg.Go(func() {
					for i := range perWorker {
						n := w*perWorker + i
						if n%150 == 149 {
							srv.DropConns()
						}
						r, err := u.Exchange(ctxFor(t, testTimeout), query(indexName(n), dns.TypeA))
						if err != nil {
							continue // a drop may fail a query and its resend both
						}
						if got := addrOf(t, r); got != indexAddr(n) {
							t.Errorf("query %d got %v, another's answer", n, got)
						}
						mu.Lock()
						answered++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			st := u.Stats()
			if st.Queries != workers*perWorker || st.Answers != uint64(answered) ||
				st.Answers+st.Errors.Total()+st.Abandoned != st.Queries {
				t.Errorf("stats %+v do not add up to %d queries, %d answered", st, workers*perWorker, answered)
			}
			if answered < workers*perWorker*3/4 {
				t.Errorf("only %d of %d queries answered", answered, workers*perWorker)
			}
		})
	}
}
