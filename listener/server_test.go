package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

func TestNewOptions(t *testing.T) {
	addrs := []netip.AddrPort{loopback}
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{name: "no addresses", opts: Options{Resolver: echo}, wantErr: true},
		{name: "no resolver", opts: Options{Addrs: addrs}, wantErr: true},
		{name: "negative limit", opts: Options{Addrs: addrs, Resolver: echo, MaxTCPConns: -1}, wantErr: true},
		{name: "zero values are defaults", opts: Options{Addrs: addrs, Resolver: echo}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error: %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			o := s.opts
			if o.QueryTimeout != DefaultQueryTimeout || o.TCPIdleTimeout != DefaultTCPIdleTimeout ||
				o.MaxTCPConns != DefaultMaxTCPConns || o.MaxTCPConnsPerClient != DefaultMaxTCPConnsPerClient ||
				o.MaxTCPInflightPerConn != DefaultMaxTCPInflightPerConn || o.MaxUDPInflight != DefaultMaxUDPInflight ||
				len(s.live.Load().allow) != len(DefaultAllow) || s.log == nil {
				t.Errorf("defaults not applied: %+v", o)
			}
		})
	}
}

func TestStartBindError(t *testing.T) {
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	busy := taken.LocalAddr().(*net.UDPAddr).AddrPort()

	s, err := New(Options{Addrs: []netip.AddrPort{loopback, busy}, Resolver: echo})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), busy.String()) {
		t.Fatalf("Start() = %v, want an error naming %s", err, busy)
	}
	if len(s.UDPAddrs()) != 0 || len(s.TCPAddrs()) != 0 {
		t.Errorf("left bound after a failed Start: %v %v", s.UDPAddrs(), s.TCPAddrs())
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after a failed Start: %v", err)
	}
	checkNoGoroutines(t)
}

func TestNoIPv6(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "listen", Err: os.NewSyscallError("socket", syscall.EAFNOSUPPORT)}, true},
		{&net.OpError{Op: "listen", Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}, true},
		{&net.OpError{Op: "listen", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}, false},
	}
	for _, tt := range tests {
		if got := noIPv6(tt.err); got != tt.want {
			t.Errorf("noIPv6(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestLifecycle(t *testing.T) {
	s, err := New(Options{Addrs: []netip.AddrPort{loopback, netip.MustParseAddrPort("[::1]:0")}, Resolver: echo})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	if u, tc := s.UDPAddrs(), s.TCPAddrs(); len(u) != 2 || len(tc) != 2 || u[0].Port() == 0 || tc[1].Port() == 0 || !u[1].Addr().Is6() {
		t.Errorf("bound UDP %v TCP %v", u, tc)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	checkNoGoroutines(t)
	if err := s.Start(); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
}

func TestShutdownAnswersInFlight(t *testing.T) {
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	s, err := New(Options{
		Addrs: []netip.AddrPort{loopback},
		Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			started <- struct{}{}
			<-release
			return echo(ctx, q)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	udpAddr, tcpAddr := s.UDPAddrs()[0], s.TCPAddrs()[0]
	cs := clients(t, s)
	for _, c := range cs {
		c.send(t, packQuery(t, 9, "example.com.", dns.TypeA, 0))
		<-started
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	// New connections are refused at once, while the queries are in flight.
	deadline := time.Now().Add(ioTimeout)
	for {
		c, err := net.Dial("tcp", tcpAddr.String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting after Shutdown")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with queries in flight", err)
	default:
	}

	close(release)
	for tr, c := range cs {
		if m, _ := c.recv(t); m.Id != 9 || m.Rcode != dns.RcodeSuccess {
			t.Errorf("%s: in-flight query answered %v", tr, m)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	waitClosed(t, cs["tcp"].(tcpClient).c, ioTimeout)
	// The UDP port is free again: the socket is closed.
	if u, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(udpAddr)); err != nil {
		t.Errorf("UDP socket still open: %v", err)
	} else {
		u.Close()
	}
	checkNoGoroutines(t)
}

// TestShutdownBounded: when Shutdown's deadline comes first, the queries
// still in flight get SERVFAIL with EDE 23 over UDP and TCP, their
// contexts are cancelled, and Shutdown returns within its bound.
func TestShutdownBounded(t *testing.T) {
	started := make(chan struct{}, 2)
	cancelled := make(chan error, 2)
	s, err := New(Options{
		Addrs: []netip.AddrPort{loopback},
		Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			started <- struct{}{}
			<-ctx.Done() // hangs until its context ends
			cancelled <- ctx.Err()
			return nil, ctx.Err()
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	cs := clients(t, s)
	for _, c := range cs {
		c.send(t, packQuery(t, 9, "example.com.", dns.TypeA, 1232))
		<-started
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown() = %v, want %v", err, context.DeadlineExceeded)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v with a 100ms bound", d)
	}
	// The queries abandoned are answered, so that their clients retry
	// at once.
	for tr, c := range cs {
		m, _ := c.recv(t)
		if ede := resolver.EDE(m); m.Id != 9 || m.Rcode != dns.RcodeServerFailure || ede == nil ||
			ede.InfoCode != dns.ExtendedErrorCodeNetworkError {
			t.Errorf("%s: abandoned query answered %v, want SERVFAIL with EDE 23", tr, m)
		}
	}
	for range 2 {
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Errorf("query context ended with %v, want it cancelled by Shutdown", err)
		}
	}
	waitClosed(t, cs["tcp"].(tcpClient).c, ioTimeout)
	checkNoGoroutines(t)
}

func TestQueryTimeout(t *testing.T) {
	s, _ := startServer(t, Options{
		QueryTimeout: 50 * time.Millisecond,
		Resolver: msgFunc(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
			<-ctx.Done()
			return nil, &resolver.Error{Code: dns.ExtendedErrorCodeNoReachableAuthority, Text: "timeout", Err: ctx.Err()}
		}),
	})
	c := clients(t, s)["udp"]
	c.send(t, packQuery(t, 3, "example.com.", dns.TypeA, 1232))
	if m, _ := c.recv(t); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("got %v, want SERVFAIL at the query deadline", m)
	}
}

func TestDebugLogs(t *testing.T) {
	s, rec := startServer(t, Options{})
	c := clients(t, s)["udp"]
	c.send(t, packQuery(t, 0x42, "example.com.", dns.TypeAAAA, 0))
	c.recv(t)
	// The answer is logged before it is sent.
	for msg, keys := range map[string][]string{
		"query received":  {"client", "transport", "size", "qname", "qtype", "id"},
		"answer returned": {"client", "transport", "qname", "qtype", "id", "rcode", "size", "dur", "truncated"},
	} {
		logs := rec.Find(msg)
		if len(logs) != 1 {
			t.Fatalf("%q logged %d times, want once", msg, len(logs))
		}
		for _, k := range keys {
			if _, ok := logs[0][k]; !ok {
				t.Errorf("%q has no %q: %v", msg, k, logs[0])
			}
		}
		if got := fmt.Sprint(logs[0]["qname"], logs[0]["qtype"], logs[0]["level"]); got != "example.com. AAAA DEBUG" {
			t.Errorf("%q logged %s", msg, got)
		}
	}
}

// TestStartLogsEachAddressOnce: an address's UDP sockets (one per CPU)
// are one "serving DNS" line, with their number, beside its TCP line.
func TestStartLogsEachAddressOnce(t *testing.T) {
	two := netip.MustParseAddrPort("127.0.0.2:0")
	_, rec := startServer(t, Options{Addrs: []netip.AddrPort{loopback, two}})
	lines := rec.Find("serving DNS")
	udp := map[string]int64{}
	tcp := 0
	for _, l := range lines {
		switch l["transport"].String() {
		case "udp":
			udp[l["addr"].String()] = l["sockets"].Int64()
		case "tcp":
			tcp++
		}
	}
	if len(udp) != 2 || tcp != 2 || len(lines) != 4 {
		t.Fatalf("got %d lines (UDP %v, %d TCP), want one UDP and one TCP line per address", len(lines), udp, tcp)
	}
	for addr, n := range udp {
		if n != int64(udpSocketsPerAddr()) {
			t.Errorf("%s: sockets=%d, want %d", addr, n, udpSocketsPerAddr())
		}
	}
}
