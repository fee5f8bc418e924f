package dottest

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// PlainServer is an in-process plain DNS server, UDP and TCP on one port
// of 127.0.0.1, standing in for a router's DNS.
type PlainServer struct {
	addr        netip.AddrPort
	udp, tcp    atomic.Int64
	udpSrv      *dns.Server
	tcpSrv      *dns.Server
	handler     dns.HandlerFunc
	truncateUDP bool
}

// StartPlain starts a plain DNS server answering with h (nil:
// Answer("192.0.2.1")) and stops it when the test ends. With truncateUDP
// every UDP answer is an empty one with TC set, so that the client must
// ask again over TCP.
func StartPlain(tb testing.TB, h Handler, truncateUDP bool) *PlainServer {
	tb.Helper()
	if h == nil {
		h = Answer("192.0.2.1")
	}
	s := &PlainServer{truncateUDP: truncateUDP}
	s.handler = func(w dns.ResponseWriter, q *dns.Msg) {
		_, isUDP := w.LocalAddr().(*net.UDPAddr)
		if isUDP {
			s.udp.Add(1)
		} else {
			s.tcp.Add(1)
		}
		if isUDP && s.truncateUDP {
			m := new(dns.Msg)
			m.SetReply(q)
			m.Truncated = true
			_ = w.WriteMsg(m)
			return
		}
		// h replies before it returns, or never (Silent): the server
		// writer is not valid after the handler returns.
		h(q, func(m *dns.Msg) { _ = w.WriteMsg(m) })
	}
	pc, ln, err := listenBoth()
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	s.udpSrv = &dns.Server{PacketConn: pc, Handler: s.handler}
	s.tcpSrv = &dns.Server{Listener: ln, Handler: s.handler}
	for _, srv := range []*dns.Server{s.udpSrv, s.tcpSrv} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			tb.Fatal("plain DNS server did not start")
		}
		tb.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

// Addr is the server's address, the same for UDP and TCP.
func (s *PlainServer) Addr() netip.AddrPort { return s.addr }

// Queries counts the queries the server read over UDP and over TCP.
func (s *PlainServer) Queries() (udp, tcp int64) { return s.udp.Load(), s.tcp.Load() }

// listenBoth binds UDP and TCP on one free loopback port. The port the
// kernel picks for UDP may be taken over TCP (an outgoing connection's,
// say): then it tries another, a bounded number of times.
func listenBoth() (net.PacketConn, net.Listener, error) {
	var err error
	for range 20 {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return nil, nil, err
		}
		var ln net.Listener
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			return pc, ln, nil
		}
		pc.Close()
	}
	return nil, nil, fmt.Errorf("no loopback port free over both UDP and TCP: %w", err)
}
