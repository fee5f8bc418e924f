package listener

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// eventRecorder is an Observer that keeps every event.
type eventRecorder struct {
	mu     sync.Mutex
	events []resolver.QueryEvent
}

func (r *eventRecorder) ObserveQuery(ev resolver.QueryEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// take returns the events so far and forgets them.
func (r *eventRecorder) take() []resolver.QueryEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// infoFiller answers like the chain would for a few names: from an
// upstream, from the cache, blocked; and fills in the Info to match.
var infoFiller = resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
	if req.Inline {
		return resolver.Response{}, resolver.ErrWouldWait
	}
	q, info := req.Msg(), &req.Info
	switch q.Question[0].Name {
	case "upstream.test.":
		info.SetUpstream("quad9")
	case "cached.test.":
		info.SetCached(true)
	case "blocked.test.":
		info.SetBlocked("ads.txt")
		return resolver.Response{Msg: new(dns.Msg).SetRcode(q, dns.RcodeNameError)}, nil
	case "big.test.":
		return resolver.Response{Msg: answerA(q, 60)}, nil
	}
	return resolver.Response{Msg: answerA(q, 1)}, nil
})

func TestObserver(t *testing.T) {
	rec := &eventRecorder{}
	s, _ := startServer(t, Options{Resolver: infoFiller, Observer: rec})
	for tr, c := range clients(t, s) {
		t.Run(tr, func(t *testing.T) {
			tests := []struct {
				name      string
				qtype     uint16
				wantRcode int
				wantTC    bool
				wantInfo  resolver.Info
			}{
				{"upstream.test.", dns.TypeA, dns.RcodeSuccess, false, resolver.Info{Upstream: "quad9"}},
				{"cached.test.", dns.TypeAAAA, dns.RcodeSuccess, false, resolver.Info{Cached: true, Stale: true}},
				{"blocked.test.", dns.TypeHTTPS, dns.RcodeNameError, false, resolver.Info{Blocked: "ads.txt"}},
				{"big.test.", dns.TypeA, dns.RcodeSuccess, tr == "udp", resolver.Info{}},
				{"axfr.test.", dns.TypeAXFR, dns.RcodeRefused, false, resolver.Info{}},
			}
			for i, tt := range tests {
				before := time.Now()
				c.send(t, packQuery(t, uint16(100+i), tt.name, tt.qtype, 0))
				m, size := c.recv(t)
				evs := rec.take()
				if len(evs) != 1 {
					t.Fatalf("%s: %d events, want 1", tt.name, len(evs))
				}
				ev := evs[0]
				if ev.Transport.String() != tr || ev.Name != tt.name || ev.Qtype != tt.qtype || ev.Rcode != tt.wantRcode ||
					ev.Size != size || ev.Truncated != tt.wantTC || m.Truncated != tt.wantTC || ev.Info != tt.wantInfo {
					t.Errorf("%s: got %+v, want transport %s qtype %d rcode %d size %d TC %v info %+v",
						tt.name, ev, tr, tt.qtype, tt.wantRcode, size, tt.wantTC, tt.wantInfo)
				}
				if ev.Client.Addr() != netip.MustParseAddr("127.0.0.1") || ev.Client.Port() == 0 {
					t.Errorf("%s: client %v", tt.name, ev.Client)
				}
				if ev.Time.Before(before) || ev.Time.After(time.Now()) || ev.Duration < 0 {
					t.Errorf("%s: time %v, duration %v", tt.name, ev.Time, ev.Duration)
				}
			}
		})
	}
}

// TestObserverRejected: queries answered without the resolver are
// observed with what could be read of them and an empty Info; packets
// dropped unanswered are not observed.
func TestObserverRejected(t *testing.T) {
	rec := &eventRecorder{}
	s, _ := startServer(t, Options{Resolver: infoFiller, Observer: rec,
		Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	c := udpClient{dialUDP(t, s.UDPAddrs()[0])}

	c.send(t, packQuery(t, 1, "upstream.test.", dns.TypeA, 0))
	if m, _ := c.recv(t); m.Rcode != dns.RcodeRefused {
		t.Fatalf("rcode %d, want REFUSED", m.Rcode)
	}
	evs := rec.take()
	if len(evs) != 1 || evs[0].Rcode != dns.RcodeRefused || evs[0].Name != "upstream.test." || evs[0].Info != (resolver.Info{}) {
		t.Fatalf("refused query observed as %+v", evs)
	}

	// A response (QR=1) is dropped. The query after it shows, by its
	// answer, that the server has read the response already.
	resp := new(dns.Msg).SetReply(new(dns.Msg).SetQuestion("x.test.", dns.TypeA))
	c.send(t, mustPack(t, resp))
	c.send(t, packQuery(t, 2, "after.test.", dns.TypeA, 0))
	c.recv(t)
	if evs := rec.take(); len(evs) != 1 || evs[0].Name != "after.test." {
		t.Fatalf("got %+v, want only the query after the dropped response", evs)
	}
}

// TestObserverFixedAtNew: Reconfigure keeps the observer New was given.
func TestObserverFixedAtNew(t *testing.T) {
	rec := &eventRecorder{}
	s, _ := startServer(t, Options{Resolver: infoFiller, Observer: rec})
	if err := s.Reconfigure(Options{Addrs: []netip.AddrPort{loopback}, Resolver: echo}); err != nil {
		t.Fatal(err)
	}
	c := udpClient{dialUDP(t, s.UDPAddrs()[0])}
	c.send(t, packQuery(t, 1, "x.test.", dns.TypeA, 0))
	c.recv(t)
	if evs := rec.take(); len(evs) != 1 {
		t.Fatalf("%d events after Reconfigure, want 1", len(evs))
	}
}

func TestObservers(t *testing.T) {
	if Observers() != nil || Observers(nil, nil) != nil {
		t.Fatal("Observers of none is not nil")
	}
	a, b := &eventRecorder{}, &eventRecorder{}
	if Observers(nil, a) != Observer(a) {
		t.Fatal("Observers of one is not that one")
	}
	Observers(a, nil, b).ObserveQuery(resolver.QueryEvent{Name: "x."})
	if len(a.take()) != 1 || len(b.take()) != 1 {
		t.Fatal("not every observer was told")
	}
}

// countObserver is the cheapest observer there is: what remains in a
// benchmark with it is the listener's own cost of observing.
type countObserver struct{ n atomic.Uint64 }

func (c *countObserver) ObserveQuery(resolver.QueryEvent) { c.n.Add(1) }

// BenchmarkAnswer measures the one path every query takes, from the
// raw query to the packed answer, with and without an observer.
func BenchmarkAnswer(b *testing.B) {
	for _, bc := range []struct {
		name string
		obs  Observer
	}{
		{"no observer", nil},
		{"observer", &countObserver{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(Options{Addrs: []netip.AddrPort{loopback}, Resolver: echo, Observer: bc.obs})
			if err != nil {
				b.Fatal(err)
			}
			q := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
			q.SetEdns0(1232, false)
			raw, err := q.Pack()
			if err != nil {
				b.Fatal(err)
			}
			client := netip.MustParseAddrPort("192.168.1.20:40000")
			sc := new(scratch)
			b.ReportAllocs()
			for b.Loop() {
				out, wait := s.answerNow(sc, nil, raw, client, resolver.UDP)
				if wait {
					out = s.answerWaiting(detach(&sc.q))
				}
				if len(out) == 0 {
					b.Fatal("no answer")
				}
			}
		})
	}
}
