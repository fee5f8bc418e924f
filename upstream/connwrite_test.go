package upstream

import (
	"errors"
	"testing"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestConnWrite: a query alone on its connection is written by the
// caller, before write returns; one that joins others in flight goes
// through the writer; either way every query is answered. A connection
// whose socket is gone fails the write with ErrConnClosed and is closed.
func TestConnWrite(t *testing.T) {
	tests := []struct {
		name    string
		others  int  // queries registered on the connection before this one
		broken  bool // the socket is closed under the connection first
		written bool // nothing is left queued when write returns
	}{
		{name: "alone: written inline", written: true},
		{name: "beside others: through the writer", others: 3},
		{name: "broken socket", broken: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startServer(t, ca, answerByIndex())
			u := newUpstream(t, ca, srv, Options{MaxConns: 1})
			ctx := ctxFor(t, testTimeout)
			c, _, err := u.pool.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.broken {
				c.forceClose()
			}
			var calls []*call
			var ids []uint16
			for i := range tt.others + 1 {
				q := query(indexName(i), dns.TypeA)
				cl := &call{q: q.Question[0], ch: make(chan result, 1)}
				id, err := c.register(cl)
				if err != nil {
					if tt.broken && errors.Is(err, ErrConnClosed) {
						return // the reader saw the socket go first
					}
					t.Fatal(err)
				}
				calls, ids = append(calls, cl), append(ids, id)
			}
			for i := len(calls) - 1; i >= 0; i-- {
				wire, err := packQuery(query(indexName(i), dns.TypeA))
				if err != nil {
					t.Fatal(err)
				}
				err = c.write(ctx, wire, ids[i])
				if tt.broken {
					if !errors.Is(err, ErrConnClosed) {
						t.Fatalf("write on a broken socket: %v, want ErrConnClosed", err)
					}
					if c.alive() {
						t.Error("the connection is still alive after a failed write")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if i == len(calls)-1 && tt.written {
					c.qmu.Lock()
					queued, writing := len(c.queue), c.writing
					c.qmu.Unlock()
					if queued != 0 || writing {
						t.Errorf("after a lone query's write: %d octets queued, writing %v; want it written", queued, writing)
					}
				}
			}
			for i, cl := range calls {
				select {
				case r := <-cl.ch:
					if r.err != nil {
						t.Fatalf("query %d: %v", i, r.err)
					}
					if got := indexOf(r.msg.Question[0].Name); got != i {
						t.Errorf("query %d got the answer to %d", i, got)
					}
				case <-ctx.Done():
					t.Fatalf("query %d: no answer", i)
				}
			}
		})
	}
}
