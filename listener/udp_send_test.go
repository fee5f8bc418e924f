package listener

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestWriteBatchFirstFails: when sendmmsg fails on its first message,
// writeBatch skips that answer and goes on.
func TestWriteBatchFirstFails(t *testing.T) {
	c, _ := loopbackUDPConn(t)
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ps := []packet{
		{buf: []byte("x"), peer: netip.MustParseAddrPort("127.0.0.1:0")}, // EINVAL
		{buf: []byte("ok"), peer: peer.LocalAddr().(*net.UDPAddr).AddrPort()},
	}
	(&Server{log: quiet()}).writeBatch(c, ps)
	peer.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 16)
	n, err := peer.Read(buf)
	if err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("the answer after the failed one: %q, %v", buf[:n], err)
	}
}

// TestFastAnswerToBroadcast: on an unspecified address (IP_PKTINFO on),
// a query sent to a broadcast address gets a fast answer the kernel will
// not send (its source would be the broadcast address); the server logs
// it and goes on answering.
func TestFastAnswerToBroadcast(t *testing.T) {
	s, _ := startServer(t, Options{Resolver: &wireEcho{}, Logger: quiet(), Addrs: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:0")}})
	port := int(s.UDPAddrs()[0].Port())
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1) })
	q := packQuery(t, 7, "example.com.", dns.TypeA, 0)
	if _, err := c.WriteToUDP(q, &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: port}); err != nil {
		t.Fatal(err)
	}
	q = packQuery(t, 8, "example.com.", dns.TypeA, 0)
	if _, err := c.WriteToUDP(q, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 512)
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no answer after the broadcast query: %v", err)
	}
	if m := unpack(t, buf[:n]); m.Id != 8 {
		t.Fatalf("answer %v, want ID 8", m)
	}
}

// TestUDPLimitCapped: a client's EDNS size of 65535 is taken as the
// largest IPv4 UDP payload, 65507: a bigger answer is truncated, not
// lost to EMSGSIZE, and the chain sees that limit (with MaxUDPSize at
// its highest).
func TestUDPLimitCapped(t *testing.T) {
	var limit atomic.Int64
	huge := msgFunc(func(_ context.Context, q *dns.Msg) (*dns.Msg, error) { return answerA(q, 4094), nil })
	s, _ := startServer(t, Options{Resolver: resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		limit.Store(int64(req.Limit))
		return huge.Resolve(ctx, req)
	}), MaxUDPSize: maxUDPPayload, Logger: quiet()})
	c := udpClient{dialUDP(t, s.UDPAddrs()[0])}
	c.send(t, packQuery(t, 9, "big.example.", dns.TypeA, 65535))
	m, size := c.recv(t)
	if !m.Truncated || size > 65507 {
		t.Errorf("answer of %d octets, TC %v; want TC within 65507", size, m.Truncated)
	}
	if got := limit.Load(); got != 65507 {
		t.Errorf("the chain saw limit %d, want 65507", got)
	}
}
