package listener

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// fastEcho answers like echo, and answers the same from packed queries
// unless decline says no; it counts both paths.
type fastEcho struct {
	decline    func(q *resolver.Packed) bool
	fast, slow atomic.Int32
}

func (f *fastEcho) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	f.slow.Add(1)
	return answerA(q, 1), nil
}

func (f *fastEcho) ResolvePacked(dst []byte, q *resolver.Packed, info *resolver.Info) ([]byte, bool) {
	if f.decline != nil && f.decline(q) {
		return dst, false
	}
	m := new(dns.Msg)
	if err := m.Unpack(q.Wire); err != nil {
		panic("fast path got a query that does not unpack: " + err.Error())
	}
	a := answerA(m, 1)
	a.Extra = nil
	if q.EDNS {
		a.SetEdns0(defaultUDPSize, q.DO)
	}
	wire, err := a.Pack()
	if err != nil || len(wire) > q.Limit {
		return dst, false
	}
	f.fast.Add(1)
	info.SetCached(false)
	return append(dst, wire...), true
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestFastPath: a resolver's fast path answers over UDP and TCP without
// Resolve; it is skipped for clients the ACL refuses and while Debug logs
// are on; the observer sees its answers as it sees the others.
func TestFastPath(t *testing.T) {
	for _, tc := range []struct {
		name     string
		logger   *slog.Logger
		allow    []netip.Prefix
		wantFast bool
		rcode    int
	}{
		{name: "fast", logger: quiet(), wantFast: true},
		{name: "debug logs", logger: nil, wantFast: false}, // startServer's recorder: Debug on
		{name: "refused client", logger: quiet(), allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, rcode: dns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &fastEcho{}
			obs := &eventRecorder{}
			s, _ := startServer(t, Options{Resolver: res, Logger: tc.logger, Allow: tc.allow, Observer: obs})
			for tr, c := range clients(t, s) {
				before := res.fast.Load()
				c.send(t, packQuery(t, 7, "Example.COM.", dns.TypeA, 1232))
				m, _ := c.recv(t)
				if m.Id != 7 || m.Rcode != tc.rcode || m.Question[0].Name != "Example.COM." {
					t.Fatalf("%s: reply %v", tr, m)
				}
				if tc.rcode == dns.RcodeSuccess && (len(m.Answer) != 1 || m.IsEdns0() == nil) {
					t.Fatalf("%s: reply %v", tr, m)
				}
				if got := res.fast.Load() > before; got != tc.wantFast {
					t.Errorf("%s: answered by the fast path: %v, want %v", tr, got, tc.wantFast)
				}
			}
			if tc.wantFast && res.slow.Load() != 0 {
				t.Errorf("Resolve called %d times", res.slow.Load())
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.events) != 2 {
				t.Fatalf("%d events, want 2", len(obs.events))
			}
			for _, ev := range obs.events {
				if ev.Name != "Example.COM." || ev.Qtype != dns.TypeA || ev.Rcode != tc.rcode || ev.Size == 0 ||
					ev.Info.Cached != tc.wantFast || ev.Time.IsZero() {
					t.Errorf("event %+v", ev)
				}
			}
		})
	}
}

// TestFastPathTCPPipelined: pipelined queries over one connection, some
// answered by the fast path and some by Resolve, all get their answer,
// whether they arrive in one segment or one by one.
func TestFastPathTCPPipelined(t *testing.T) {
	res := &fastEcho{decline: func(q *resolver.Packed) bool { return q.ID()%3 == 0 }}
	s, _ := startServer(t, Options{Resolver: res, Logger: quiet()})
	for _, together := range []bool{true, false} {
		c := tcpClient{dialTCP(t, s.TCPAddrs()[0], netip.Addr{})}
		const n = 60
		var all []byte
		for i := range n {
			q := frame(packQuery(t, uint16(i+1), "pipe.example.", dns.TypeA, 0))
			if together {
				all = append(all, q...)
			} else if _, err := c.c.Write(q); err != nil {
				t.Fatal(err)
			}
		}
		if together {
			if _, err := c.c.Write(all); err != nil {
				t.Fatal(err)
			}
		}
		seen := make(map[uint16]bool)
		for range n {
			m, _ := c.recv(t)
			if seen[m.Id] || m.Id == 0 || m.Id > n || len(m.Answer) != 1 {
				t.Fatalf("unexpected reply %v", m)
			}
			seen[m.Id] = true
		}
	}
	if res.fast.Load() == 0 || res.slow.Load() == 0 {
		t.Errorf("fast %d, slow %d: want both paths taken", res.fast.Load(), res.slow.Load())
	}
}

// TestFastPathDeclinesTooBig: an answer the fast path cannot fit in the
// client's UDP size goes the usual way, which truncates it.
func TestFastPathDeclinesTooBig(t *testing.T) {
	res := &fastEcho{}
	big := resolver.Func(func(_ context.Context, q *dns.Msg) (*dns.Msg, error) { return answerA(q, 60), nil })
	s, _ := startServer(t, Options{Resolver: struct {
		resolver.Resolver
		resolver.Fast
	}{big, resolver.Fast(fastFunc(func(dst []byte, q *resolver.Packed, _ *resolver.Info) ([]byte, bool) {
		res.fast.Add(1)
		if q.Limit != 512 {
			t.Errorf("limit %d for a query without EDNS, want 512", q.Limit)
		}
		return dst, false
	}))}, Logger: quiet()})
	c := udpClient{dialUDP(t, s.UDPAddrs()[0])}
	c.send(t, packQuery(t, 9, "big.example.", dns.TypeA, 0))
	m, size := c.recv(t)
	if !m.Truncated || size > 512 || res.fast.Load() != 1 {
		t.Errorf("reply TC=%v size %d after %d fast tries", m.Truncated, size, res.fast.Load())
	}
}

type fastFunc func(dst []byte, q *resolver.Packed, info *resolver.Info) ([]byte, bool)

func (f fastFunc) ResolvePacked(dst []byte, q *resolver.Packed, info *resolver.Info) ([]byte, bool) {
	return f(dst, q, info)
}

// TestFastPathPanic: a panic in the fast path is logged and the query
// answered the usual way.
func TestFastPathPanic(t *testing.T) {
	s, _ := startServer(t, Options{Resolver: struct {
		resolver.Resolver
		resolver.Fast
	}{echo, resolver.Fast(fastFunc(func([]byte, *resolver.Packed, *resolver.Info) ([]byte, bool) {
		panic("boom")
	}))}, Logger: quiet()})
	for tr, c := range clients(t, s) {
		c.send(t, packQuery(t, 11, "panic.example.", dns.TypeA, 0))
		if m, _ := c.recv(t); m.Id != 11 || len(m.Answer) != 1 {
			t.Errorf("%s: reply %v", tr, m)
		}
	}
}
