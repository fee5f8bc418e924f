package listener

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPConnRoundTrip: the batch reader and writer the UDP loops use
// (recvmmsg and sendmmsg on Linux) read datagrams from several senders
// with each sender's address, and send each its reply, over IPv4 and
// IPv6.
func TestUDPConnRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		network, ip string
		v6          bool
	}{{"udp4", "127.0.0.1", false}, {"udp6", "::1", true}} {
		t.Run(tc.network, func(t *testing.T) {
			srv, err := net.ListenUDP(tc.network, &net.UDPAddr{IP: net.ParseIP(tc.ip)})
			if err != nil {
				t.Skipf("no %s loopback: %v", tc.network, err)
			}
			laddr := srv.LocalAddr().(*net.UDPAddr)
			bc, err := newUDPConn(srv, tc.v6)
			if err != nil {
				t.Fatal(err)
			}
			defer bc.Close()
			var clients []*net.UDPConn
			for i := range 3 {
				c, err := net.DialUDP(tc.network, nil, laddr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write([]byte{byte('a' + i)}); err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
			}
			ps := make([]packet, udpBatch)
			for i := range ps {
				ps[i].buf = make([]byte, 512)
			}
			got := map[netip.AddrPort]byte{}
			var replies []packet
			for len(got) < len(clients) {
				n, err := bc.readBatch(ps)
				if err != nil {
					t.Fatalf("readBatch: %v", err)
				}
				for _, p := range ps[:n] {
					if p.n != 1 || !p.peer.IsValid() {
						t.Fatalf("read %d octets from %v", p.n, p.peer)
					}
					got[p.peer] = p.buf[0]
					replies = append(replies, packet{buf: []byte{p.buf[0] - 'a' + 'A'}, peer: p.peer})
				}
			}
			for i, c := range clients {
				from := c.LocalAddr().(*net.UDPAddr).AddrPort()
				from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
				if got[from] != byte('a'+i) {
					t.Errorf("from %v: read %q, want %q (all: %v)", from, got[from], byte('a'+i), got)
				}
			}
			if n, err := bc.writeBatch(replies); err != nil || n != len(replies) {
				t.Fatalf("writeBatch: %d of %d, %v", n, len(replies), err)
			}
			for i, c := range clients {
				c.SetReadDeadline(time.Now().Add(ioTimeout))
				buf := make([]byte, 8)
				n, err := c.Read(buf)
				if err != nil || n != 1 || buf[0] != byte('A'+i) {
					t.Errorf("client %d: reply %q, %v", i, buf[:n], err)
				}
			}
		})
	}
}

// TestInlineIPv6: cache hits are answered over IPv6 too, by the
// socket's read loop.
func TestInlineIPv6(t *testing.T) {
	res := &wireEcho{}
	s, err := New(Options{Addrs: []netip.AddrPort{netip.MustParseAddrPort("[::1]:0")}, Resolver: res, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer s.Shutdown(t.Context())
	c := udpClient{dialUDP(t, s.UDPAddrs()[0])}
	c.send(t, packQuery(t, 42, "v6.example.", dns.TypeAAAA, 1232))
	if m, _ := c.recv(t); m.Id != 42 || res.inline.Load() != 1 {
		t.Fatalf("reply %v after %d inline answers", m, res.inline.Load())
	}
}
