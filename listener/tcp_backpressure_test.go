package listener

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// split answers the names wait picks after a wait, with slow, and every
// other name at once, as wireEcho does.
type split struct {
	wireEcho
	slow func(ctx context.Context, q *dns.Msg) *dns.Msg
}

func (b *split) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	if !b.wait(req) {
		return b.wireEcho.Resolve(ctx, req)
	}
	if req.Inline {
		return resolver.Response{}, resolver.ErrWouldWait
	}
	return resolver.Response{Msg: b.slow(ctx, req.Msg())}, nil
}

// TestTCPClientNotReading: a client that sends and never reads stops
// being read once its answers back up, with the answers made inline as
// with the others: the write queue stays bounded by the in-flight cap
// instead of growing with what the client sends.
func TestTCPClientNotReading(t *testing.T) {
	// "big." gets about 32 KB after a wait, every other name a small
	// answer at once.
	res := &split{slow: func(_ context.Context, q *dns.Msg) *dns.Msg { return answerA(q, 2000) }}
	res.wait = func(req *resolver.Request) bool { return req.Name == "big." }
	s, _ := startServer(t, Options{Resolver: res, Logger: quiet(), MaxTCPInflightPerConn: 10, TCPIdleTimeout: 4 * time.Second})
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(s.TCPAddrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4096)
	var bigs, hits []byte
	for i := range 200 {
		bigs = append(bigs, frame(packQuery(t, uint16(i+1), "big.", dns.TypeA, 0))...)
	}
	for i := range 1000 {
		hits = append(hits, frame(packQuery(t, uint16(i+1000), "q.example.", dns.TypeA, 0))...)
	}
	// Send until the server stops reading: a write then times out.
	stopped := false
	for i := 0; i < 300 && !stopped; i++ {
		b := hits
		if i == 0 {
			b = bigs
		}
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		var ne net.Error
		if _, err := c.Write(b); errors.As(err, &ne) && ne.Timeout() {
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("the server read on from a client that reads nothing (%d inline answers made)", res.inline.Load())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for tc := range s.conns {
		tc.qmu.Lock()
		n := len(tc.queue)
		tc.qmu.Unlock()
		if n > 1<<20 {
			t.Errorf("write queue of %d bytes with MaxTCPInflightPerConn=10", n)
		}
	}
}

// TestTCPFastAnswerNotHeldBehindSlow: with the connection at its
// in-flight cap on slow queries, a cache hit read before them is
// answered at once, not when a slow query ends.
func TestTCPFastAnswerNotHeldBehindSlow(t *testing.T) {
	// "slow." is answered only once release is closed, every other name
	// at once.
	release := make(chan struct{})
	res := &split{slow: func(ctx context.Context, q *dns.Msg) *dns.Msg {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return answerA(q, 1)
	}}
	res.wait = func(req *resolver.Request) bool { return req.Name == "slow." }
	s, _ := startServer(t, Options{Resolver: res, Logger: quiet(), MaxTCPInflightPerConn: 2})
	defer close(release)
	c := tcpClient{dialTCP(t, s.TCPAddrs()[0], netip.Addr{})}
	var all []byte
	for i, name := range []string{"hit.", "slow.", "slow.", "hit."} {
		all = append(all, frame(packQuery(t, uint16(i+1), name, dns.TypeA, 0))...)
	}
	if _, err := c.c.Write(all); err != nil {
		t.Fatal(err)
	}
	// The slow queries are held until the test ends: only the hit can
	// answer within recv's timeout.
	if m, _ := c.recv(t); m.Id != 1 {
		t.Fatalf("first answer %d, want the hit (1)", m.Id)
	}
}
