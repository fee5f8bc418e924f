package listener

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/testlog"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// ioTimeout bounds every read a test waits on, so that a bug fails the
// test instead of hanging it.
const ioTimeout = 3 * time.Second

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

// answerA answers q with n A records (at least one).
func answerA(q *dns.Msg, n int) *dns.Msg {
	m := new(dns.Msg).SetReply(q)
	m.RecursionAvailable = true
	for i := range max(n, 1) {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(192, 0, 2+byte(i/250), byte(1+i%250)),
		})
	}
	return m
}

// msgFunc adapts a test resolver that answers messages: like the
// selector, it has nothing for an Inline request (its answer waits), and
// answers the query again in a worker.
type msgFunc func(ctx context.Context, q *dns.Msg) (*dns.Msg, error)

func (f msgFunc) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	if req.Inline {
		return resolver.Response{}, resolver.ErrWouldWait
	}
	m, err := f(ctx, req.Msg())
	return resolver.Response{Msg: m}, err
}

// answerOnce answers raw from client over tr as a socket's reader and a
// worker do between them: at once when the chain can, else after the
// wait. It returns the answer's wire form, empty when raw gets none.
func answerOnce(s *Server, raw []byte, client netip.AddrPort, tr resolver.Transport) []byte {
	sc := new(scratch)
	wire, wait := s.answerNow(sc, nil, raw, client, tr)
	if wait {
		wire = s.answerWaiting(detach(&sc.q))
	}
	return wire
}

// echo answers every query with one A record.
var echo = msgFunc(func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	return answerA(q, 1), nil
})

// logRecorder keeps every log record, for tests that check what was
// logged.
type logRecorder = testlog.Recorder

// startServer starts a Server on 127.0.0.1:0 with opts, filling in a
// resolver and a recording logger when opts has none. At cleanup it shuts
// the server down and checks that none of its goroutines is left.
func startServer(t *testing.T, opts Options) (*Server, *logRecorder) {
	t.Helper()
	if opts.Addrs == nil {
		opts.Addrs = []netip.AddrPort{loopback}
	}
	if opts.Resolver == nil {
		opts.Resolver = echo
	}
	rec := &logRecorder{}
	if opts.Logger == nil {
		opts.Logger = slog.New(rec)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		checkNoGoroutines(t)
	})
	return s, rec
}

// checkNoGoroutines fails t if a server goroutine is still running once a
// deadline has passed.
func checkNoGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var left []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "listener.(*Server)") || strings.Contains(g, "listener.(*tcpConn)") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d server goroutines left after Shutdown:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // polling for goroutines to exit, not for readiness
	}
}

// packQuery returns a packed query for name and qtype, with ID id and EDNS
// with UDP size udpSize when udpSize > 0.
func packQuery(t *testing.T, id uint16, name string, qtype uint16, udpSize uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	if udpSize > 0 {
		m.SetEdns0(udpSize, false)
	}
	return mustPack(t, m)
}

func mustPack(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialUDP returns a UDP socket connected to addr, closed at cleanup.
func dialUDP(t *testing.T, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialTCP returns a TCP connection to addr from local (any when invalid),
// closed at cleanup.
func dialTCP(t *testing.T, addr netip.AddrPort, local netip.Addr) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout}
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// client sends raw queries over one transport and reads the replies.
type client interface {
	send(t *testing.T, raw []byte)
	recv(t *testing.T) (*dns.Msg, int) // the reply and its size
}

type udpClient struct{ c *net.UDPConn }

func (u udpClient) send(t *testing.T, raw []byte) {
	t.Helper()
	if _, err := u.c.Write(raw); err != nil {
		t.Fatal(err)
	}
}

func (u udpClient) recv(t *testing.T) (*dns.Msg, int) {
	t.Helper()
	u.c.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, dns.MaxMsgSize)
	n, err := u.c.Read(buf)
	if err != nil {
		t.Fatalf("reading UDP reply: %v", err)
	}
	return unpack(t, buf[:n]), n
}

type tcpClient struct{ c net.Conn }

func (c tcpClient) send(t *testing.T, raw []byte) {
	t.Helper()
	if _, err := c.c.Write(frame(raw)); err != nil {
		t.Fatal(err)
	}
}

func (c tcpClient) recv(t *testing.T) (*dns.Msg, int) {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(ioTimeout))
	var prefix [2]byte
	if _, err := io.ReadFull(c.c, prefix[:]); err != nil {
		t.Fatalf("reading TCP reply: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(prefix[:]))
	if _, err := io.ReadFull(c.c, buf); err != nil {
		t.Fatalf("reading TCP reply: %v", err)
	}
	return unpack(t, buf), len(buf)
}

// frame prefixes raw with its length, for TCP.
func frame(raw []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(raw))), raw...)
}

func unpack(t *testing.T, b []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unpacking reply: %v", err)
	}
	return m
}

// clients returns one client per transport to s.
func clients(t *testing.T, s *Server) map[string]client {
	return map[string]client{
		"udp": udpClient{dialUDP(t, s.UDPAddrs()[0])},
		"tcp": tcpClient{dialTCP(t, s.TCPAddrs()[0], netip.Addr{})},
	}
}

// waitClosed fails t unless the server closes c (EOF or reset) in time.
// It may be called from another goroutine than the test's.
func waitClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil:
		t.Error("connection still open: read data")
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("connection still open after %v", within)
	}
}
