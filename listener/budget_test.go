package listener

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestInflightPerClient: a client at its share of the in-flight budget,
// with half the budget in use, has its TCP connections read no further
// (however many it opens) and its UDP queries dropped, while another
// client is answered; once answers are done, the first client's queries
// go on, none lost.
func TestInflightPerClient(t *testing.T) {
	const share = 2
	var slowStarted atomic.Int32
	release := make(chan struct{})
	s, rec := startServer(t, Options{
		MaxInflightPerClient: share,
		MaxInflight:          borrowFraction * share, // the share binds from here
		Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			if strings.HasPrefix(q.Question[0].Name, "slow") {
				slowStarted.Add(1)
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return echo(ctx, q)
		}),
	})
	hog := netip.MustParseAddr("127.0.0.1")
	var conns []tcpClient
	for range 2 {
		c := tcpClient{dialTCP(t, s.TCPAddrs()[0], hog)}
		for i := range 3 {
			c.send(t, packQuery(t, uint16(i+1), "slow.example.", dns.TypeA, 0))
		}
		conns = append(conns, c)
	}
	waitFor(t, "the hog's share in flight", func() bool { return slowStarted.Load() == share })

	// Another client is answered meanwhile, over UDP and TCP.
	other := dialUDPFrom(t, s.UDPAddrs()[0], netip.MustParseAddr("127.0.0.2"))
	other.send(t, packQuery(t, 7, "fast.example.", dns.TypeA, 0))
	if m, _ := other.recv(t); m.Id != 7 || m.Rcode != dns.RcodeSuccess {
		t.Fatalf("other client got %v", m)
	}
	tc := tcpClient{dialTCP(t, s.TCPAddrs()[0], netip.MustParseAddr("127.0.0.2"))}
	tc.send(t, packQuery(t, 8, "fast.example.", dns.TypeA, 0))
	if m, _ := tc.recv(t); m.Id != 8 {
		t.Fatalf("other client got %v over TCP", m)
	}
	// The hog's UDP query is dropped, and said so.
	hogUDP := dialUDPFrom(t, s.UDPAddrs()[0], hog)
	hogUDP.send(t, packQuery(t, 9, "fast.example.", dns.TypeA, 0))
	waitFor(t, "the drop logged", func() bool {
		return len(rec.Find("UDP query dropped: client at its share of queries in flight")) > 0
	})
	if n := s.ShareDropped(); n != 1 {
		t.Errorf("%d drops counted, want 1", n)
	}
	if n := slowStarted.Load(); n != share {
		t.Fatalf("%d of the hog's queries in flight, want its share, %d", n, share)
	}

	close(release)
	for _, c := range conns {
		for range 3 {
			if m, _ := c.recv(t); m.Rcode != dns.RcodeSuccess {
				t.Fatalf("hog's query answered %v", m)
			}
		}
	}
}

// TestInflightBorrow: while most of the budget is free, a client alone
// is not held to its share: a forwarder sending a whole LAN's queries
// from one address gets them answered.
func TestInflightBorrow(t *testing.T) {
	const share, queries = 2, 8
	var started atomic.Int32
	release := make(chan struct{})
	s, _ := startServer(t, Options{
		MaxInflightPerClient: share,
		MaxInflight:          borrowFraction * 2 * queries,
		Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			started.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return echo(ctx, q)
		}),
	})
	c := tcpClient{dialTCP(t, s.TCPAddrs()[0], netip.Addr{})}
	u := udpClient{dialUDP(t, s.UDPAddrs()[0])}
	for i := range queries / 2 {
		c.send(t, packQuery(t, uint16(i), "slow.example.", dns.TypeA, 0))
		u.send(t, packQuery(t, uint16(i), "slow.example.", dns.TypeA, 0))
	}
	waitFor(t, "every query in flight", func() bool { return started.Load() == queries })
	close(release)
	for range queries / 2 {
		c.recv(t)
		u.recv(t)
	}
}

// waitFor polls cond until it holds, failing t after ioTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// dialUDPFrom returns a UDP client of addr bound to local, closed at
// cleanup.
func dialUDPFrom(t *testing.T, addr netip.AddrPort, local netip.Addr) udpClient {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return udpClient{c}
}
