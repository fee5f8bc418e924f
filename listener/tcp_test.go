package listener

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestTCPPipelining(t *testing.T) {
	release := make(chan struct{})
	s, _ := startServer(t, Options{Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		if q.Question[0].Name == "first.example." {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return echo(ctx, q)
	})})
	c := tcpClient{dialTCP(t, s.TCPAddrs()[0], netip.Addr{})}
	var all []byte
	for i, name := range []string{"first.example.", "second.example.", "third.example."} {
		all = append(all, frame(packQuery(t, uint16(i+1), name, dns.TypeA, 0))...)
	}
	c.c.Write(all) // all three in one segment: the server must not wait for the first

	var order []uint16
	for range 2 {
		m, _ := c.recv(t)
		order = append(order, m.Id)
	}
	close(release)
	m, _ := c.recv(t)
	order = append(order, m.Id)
	if order[2] != 1 || order[0] == 1 || order[1] == 1 || order[0] == order[1] {
		t.Fatalf("answers arrived in order %v, want 2 and 3 (either order), then 1", order)
	}
}

func TestTCPInflightBackpressure(t *testing.T) {
	started := make(chan string, 10)
	tokens := make(chan struct{}, 10)
	s, _ := startServer(t, Options{
		MaxTCPInflightPerConn: 2,
		Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			started <- q.Question[0].Name
			select {
			case <-tokens:
				return echo(ctx, q)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}),
	})
	c := tcpClient{dialTCP(t, s.TCPAddrs()[0], netip.Addr{})}
	for i := range 4 {
		c.send(t, packQuery(t, uint16(i+1), "q.example.", dns.TypeA, 0))
	}
	waitStarted := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-started:
			case <-time.After(ioTimeout):
				t.Fatal("query not passed to the resolver")
			}
		}
	}
	noneStarted := func() {
		t.Helper()
		select {
		case <-started:
			t.Fatal("more queries in flight than MaxTCPInflightPerConn")
		case <-time.After(100 * time.Millisecond): // checking that nothing happens
		}
	}
	waitStarted(2)
	noneStarted()
	tokens <- struct{}{}
	c.recv(t)
	waitStarted(1) // the reader went on once a slot was free
	noneStarted()
	for range 3 {
		tokens <- struct{}{}
	}
	for range 3 {
		c.recv(t) // none dropped
	}
}

func TestTCPConnCaps(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		name      string
		opts      Options
		admitted  []netip.Addr // clients whose connections are served
		refused   netip.Addr   // then this one's is closed at once
		stillOpen netip.Addr   // and this one is served
	}{
		{
			name:      "per client",
			opts:      Options{MaxTCPConnsPerClient: 2},
			admitted:  []netip.Addr{ip("127.0.0.1"), ip("127.0.0.1")},
			refused:   ip("127.0.0.1"),
			stillOpen: ip("127.0.0.2"),
		},
		{
			name:     "global",
			opts:     Options{MaxTCPConns: 2},
			admitted: []netip.Addr{ip("127.0.0.1"), ip("127.0.0.2")},
			refused:  ip("127.0.0.3"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := startServer(t, tt.opts)
			addr := s.TCPAddrs()[0]
			var open []tcpClient
			for _, from := range tt.admitted {
				c := tcpClient{dialTCP(t, addr, from)}
				c.send(t, packQuery(t, 1, "example.com.", dns.TypeA, 0))
				c.recv(t) // served, so counted
				open = append(open, c)
			}
			waitClosed(t, dialTCP(t, addr, tt.refused), ioTimeout)
			if len(rec.Find("TCP connection refused: limit reached")) == 0 {
				t.Error("refusal not logged")
			}
			if tt.stillOpen.IsValid() {
				c := tcpClient{dialTCP(t, addr, tt.stillOpen)}
				c.send(t, packQuery(t, 2, "example.com.", dns.TypeA, 0))
				c.recv(t)
			}

			// Closing one frees its slot, once the server has noticed.
			open[0].c.Close()
			deadline := time.Now().Add(ioTimeout)
			for {
				c := dialTCP(t, addr, tt.refused)
				c.Write(frame(packQuery(t, 3, "example.com.", dns.TypeA, 0))) // fails if refused: seen below
				c.SetReadDeadline(time.Now().Add(ioTimeout))
				if _, err := c.Read(make([]byte, 2)); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("slot not freed after a connection closed")
				}
			}
		})
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	s, _ := startServer(t, Options{
		TCPIdleTimeout: idle,
		Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			if q.Question[0].Name == "slow.example." {
				// Longer than the idle timeout: in flight is not idle.
				select {
				case <-time.After(3 * idle):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return echo(ctx, q)
		}),
	})
	c := tcpClient{dialTCP(t, s.TCPAddrs()[0], netip.Addr{})}
	c.send(t, packQuery(t, 1, "slow.example.", dns.TypeA, 0))
	if m, _ := c.recv(t); m.Id != 1 {
		t.Fatalf("got %v", m)
	}
	start := time.Now()
	waitClosed(t, c.c, ioTimeout)
	if d := time.Since(start); d < idle/2 {
		t.Errorf("closed after %v, before the idle timeout %v", d, idle)
	}
}

func TestTCPStalledClientDropped(t *testing.T) {
	const idle = 300 * time.Millisecond
	tests := []struct {
		name string
		sent []byte
	}{
		{name: "partial length prefix", sent: []byte{0}},
		{name: "partial message", sent: []byte{0, 30, 1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, Options{TCPIdleTimeout: idle})
			addr := s.TCPAddrs()[0]
			stalled := dialTCP(t, addr, netip.Addr{})
			stalled.Write(tt.sent)
			start := time.Now()
			closed := make(chan time.Duration, 1)
			go func() {
				waitClosed(t, stalled, ioTimeout)
				closed <- time.Since(start)
			}()

			// Other clients are served meanwhile.
			other := tcpClient{dialTCP(t, addr, netip.Addr{})}
			for i := range 3 {
				other.send(t, packQuery(t, uint16(i), "example.com.", dns.TypeA, 0))
				other.recv(t)
			}
			if d := <-closed; d < idle/2 {
				t.Errorf("dropped after %v, before the read deadline %v", d, idle)
			}
		})
	}
}

func TestTCPZeroLengthCloses(t *testing.T) {
	s, _ := startServer(t, Options{})
	c := dialTCP(t, s.TCPAddrs()[0], netip.Addr{})
	c.Write([]byte{0, 0})
	waitClosed(t, c, ioTimeout)
}
