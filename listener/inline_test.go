package listener

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// wireEcho answers like echo, at once and in wire form as a cache hit
// does, unless wait says the request's answer must wait: then an Inline
// request gets resolver.ErrWouldWait and the request, resolved again,
// a message. It counts both.
type wireEcho struct {
	wait         func(req *resolver.Request) bool
	inline, slow atomic.Int32
}

func (f *wireEcho) Resolve(_ context.Context, req *resolver.Request) (resolver.Response, error) {
	a := answerA(req.Msg(), 1)
	if f.wait != nil && f.wait(req) {
		if req.Inline {
			return resolver.Response{}, resolver.ErrWouldWait
		}
		f.slow.Add(1)
		return resolver.Response{Msg: a}, nil
	}
	a.Extra = nil
	if req.EDNS {
		a.SetEdns0(defaultUDPSize, req.DO)
	}
	wire, err := a.Pack()
	if err != nil || len(wire) > req.Limit {
		panic("wireEcho: answer too big")
	}
	f.inline.Add(1)
	req.Info.SetCached(false)
	return resolver.Response{Wire: append(req.Buf, wire...)}, nil
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestInlineAnswers: an answer the chain has at once goes out over UDP
// and TCP from the goroutine that read the query, the chain asked once,
// whatever the log level; a client the ACL refuses never reaches the
// chain; the observer sees these answers as it sees the others.
func TestInlineAnswers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		logger     *slog.Logger
		allow      []netip.Prefix
		wantInline bool
		rcode      int
	}{
		{name: "inline", logger: quiet(), wantInline: true},
		{name: "debug logs", logger: nil, wantInline: true}, // startServer's recorder: Debug on
		{name: "refused client", logger: quiet(), allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, rcode: dns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &wireEcho{}
			obs := &eventRecorder{}
			s, _ := startServer(t, Options{Resolver: res, Logger: tc.logger, Allow: tc.allow, Observer: obs})
			for tr, c := range clients(t, s) {
				before := res.inline.Load()
				c.send(t, packQuery(t, 7, "Example.COM.", dns.TypeA, 1232))
				m, _ := c.recv(t)
				if m.Id != 7 || m.Rcode != tc.rcode || m.Question[0].Name != "Example.COM." {
					t.Fatalf("%s: reply %v", tr, m)
				}
				if tc.rcode == dns.RcodeSuccess && (len(m.Answer) != 1 || m.IsEdns0() == nil) {
					t.Fatalf("%s: reply %v", tr, m)
				}
				if got := res.inline.Load() > before; got != tc.wantInline {
					t.Errorf("%s: answered inline: %v, want %v", tr, got, tc.wantInline)
				}
			}
			if res.slow.Load() != 0 {
				t.Errorf("resolved again %d times", res.slow.Load())
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.events) != 2 {
				t.Fatalf("%d events, want 2", len(obs.events))
			}
			for _, ev := range obs.events {
				if ev.Name != "Example.COM." || ev.Qtype != dns.TypeA || ev.Rcode != tc.rcode || ev.Size == 0 ||
					ev.Info.Cached != tc.wantInline || ev.Time.IsZero() {
					t.Errorf("event %+v", ev)
				}
			}
		})
	}
}

// TestInlineTCPPipelined: pipelined queries over one connection, some
// answered inline and some after a wait, all get their answer, whether
// they arrive in one segment or one by one.
func TestInlineTCPPipelined(t *testing.T) {
	res := &wireEcho{wait: func(req *resolver.Request) bool { return req.ID%3 == 0 }}
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
	if res.inline.Load() == 0 || res.slow.Load() == 0 {
		t.Errorf("inline %d, after a wait %d: want both", res.inline.Load(), res.slow.Load())
	}
}

// TestInlineMessageTruncated: a message answered inline that does not
// fit the client's UDP size is truncated, as any other; the chain sees
// the client's limit.
func TestInlineMessageTruncated(t *testing.T) {
	var calls atomic.Int32
	s, _ := startServer(t, Options{Resolver: resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
		calls.Add(1)
		if req.Limit != 512 || !req.Inline {
			t.Errorf("limit %d, inline %v for a query without EDNS, want 512, inline", req.Limit, req.Inline)
		}
		return resolver.Response{Msg: answerA(req.Msg(), 60)}, nil
	}), Logger: quiet()})
	c := udpClient{dialUDP(t, s.UDPAddrs()[0])}
	c.send(t, packQuery(t, 9, "big.example.", dns.TypeA, 0))
	m, size := c.recv(t)
	if !m.Truncated || size > 512 || calls.Load() != 1 {
		t.Errorf("reply TC=%v size %d after %d calls", m.Truncated, size, calls.Load())
	}
}

// TestInlinePanic: a panic in the chain, inline or in a worker, is logged
// and answered with SERVFAIL, and the socket's reader goes on reading.
func TestInlinePanic(t *testing.T) {
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) { testPanic(t, inline) })
	}
}

func testPanic(t *testing.T, inline bool) {
	s, rec := startServer(t, Options{Resolver: resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
		if req.Inline && !inline {
			return resolver.Response{}, resolver.ErrWouldWait
		}
		if req.Name == "panic.example." {
			panic("boom")
		}
		return resolver.Response{Msg: answerA(req.Msg(), 1)}, nil
	})})
	for tr, c := range clients(t, s) {
		c.send(t, packQuery(t, 11, "panic.example.", dns.TypeA, 0))
		if m, _ := c.recv(t); m.Id != 11 || m.Rcode != dns.RcodeServerFailure || len(m.Question) != 1 {
			t.Errorf("%s: reply %v", tr, m)
		}
		c.send(t, packQuery(t, 12, "fine.example.", dns.TypeA, 0))
		if m, _ := c.recv(t); m.Id != 12 || len(m.Answer) != 1 {
			t.Errorf("%s: the next reply %v", tr, m)
		}
	}
	if len(rec.Find("panic answering query")) != 2 {
		t.Errorf("panics logged %d times, want 2", len(rec.Find("panic answering query")))
	}
}
