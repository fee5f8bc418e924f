package upstream

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestExchange checks what goes over the wire and what comes back: the
// resolver sees a padded query with our EDNS and the client's DO bit but
// none of the client's own options; the caller gets the answer with its
// ID and question (letter case and all) and without the padding.
func TestExchange(t *testing.T) {
	withEDNS := func(do bool, opts ...dns.EDNS0) func(*dns.Msg) {
		return func(q *dns.Msg) {
			q.SetEdns0(4096, do)
			opt := q.IsEdns0()
			opt.Option = append(opt.Option, opts...)
		}
	}
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"}
	ecs := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 51, 100, 0)}
	tests := []struct {
		name   string
		qname  string
		edit   func(*dns.Msg)
		wantDO bool
	}{
		{name: "no EDNS", qname: "ExAmPle.COM."},
		{name: "DO bit carried", qname: "example.org.", edit: withEDNS(true), wantDO: true},
		{name: "EDNS without DO", qname: "Example.NET.", edit: withEDNS(false)},
		{name: "client cookie and ECS dropped", qname: "a.b.example.", edit: withEDNS(true, cookie, ecs), wantDO: true},
		{name: "client padding replaced", qname: "pad.example.", edit: withEDNS(false, &dns.EDNS0_PADDING{Padding: make([]byte, 300)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			seen := make(chan *dns.Msg, 1)
			srv := startServer(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
				seen <- q
				m := dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.7"))
				// A resolver pads its answer over TLS and may add an EDE:
				// the padding stays on the encrypted hop, the EDE is for
				// the client.
				m.IsEdns0().Option = []dns.EDNS0{
					&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer},
					&dns.EDNS0_PADDING{Padding: make([]byte, 100)},
				}
				reply(m)
			})
			u := newUpstream(t, ca, srv, Options{})

			q := query(tt.qname, dns.TypeA)
			q.Id = 4242
			if tt.edit != nil {
				tt.edit(q)
			}
			orig := q.Copy()
			r, err := u.Exchange(ctxFor(t, testTimeout), q)
			if err != nil {
				t.Fatal(err)
			}

			sent := <-seen
			if got := sent.Question[0]; got != orig.Question[0] {
				t.Errorf("server saw question %v, want %v", got, orig.Question[0])
			}
			if srv.Padded() != 1 {
				t.Errorf("server saw %d padded queries, want 1", srv.Padded())
			}
			opt := sent.IsEdns0()
			if opt == nil {
				t.Fatal("query sent without EDNS")
			}
			if opt.UDPSize() != ednsUDPSize || opt.Do() != tt.wantDO {
				t.Errorf("sent OPT size %d DO %v, want %d %v", opt.UDPSize(), opt.Do(), ednsUDPSize, tt.wantDO)
			}
			for _, o := range opt.Option {
				if o.Option() != dns.EDNS0PADDING {
					t.Errorf("client option %v forwarded upstream", o)
				}
			}

			if r.Id != 4242 || r.Question[0] != orig.Question[0] {
				t.Errorf("answer ID %d question %v, want 4242 %v", r.Id, r.Question[0], orig.Question[0])
			}
			if got := addrOf(t, r); got != netip.MustParseAddr("192.0.2.7") {
				t.Errorf("answer %v, want 192.0.2.7", got)
			}
			var ede bool
			for _, o := range r.IsEdns0().Option {
				switch o.(type) {
				case *dns.EDNS0_PADDING:
					t.Error("padding left in the answer")
				case *dns.EDNS0_EDE:
					ede = true
				}
			}
			if !ede {
				t.Error("the resolver's EDE was dropped")
			}
			if q.String() != orig.String() {
				t.Errorf("Exchange modified the query:\n%v\nwas\n%v", q, orig)
			}
		})
	}
}

// TestMismatchedAnswersDiscarded: an answer with another ID, another
// question or no QR bit is not the answer; the query keeps waiting for the
// right one, and times out when only wrong ones come.
func TestMismatchedAnswersDiscarded(t *testing.T) {
	wrongID := func(q, m *dns.Msg) { m.Id = q.Id + 1 }
	wrongName := func(_, m *dns.Msg) { m.Question[0].Name = "other.example." }
	wrongType := func(_, m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA }
	noQR := func(_, m *dns.Msg) { m.Response = false }
	noQuestion := func(_, m *dns.Msg) { m.Question = nil }
	tests := []struct {
		name      string
		spoil     func(q, m *dns.Msg)
		thenRight bool
	}{
		{"wrong ID, then right", wrongID, true},
		{"wrong name, then right", wrongName, true},
		{"wrong type, then right", wrongType, true},
		{"QR bit unset, then right", noQR, true},
		{"no question, then right", noQuestion, true},
		{"only wrong ID", wrongID, false},
		{"only wrong name", wrongName, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startServer(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
				bad := dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.66"))
				tt.spoil(q, bad)
				reply(bad)
				if tt.thenRight {
					reply(dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.1")))
				}
			})
			u := newUpstream(t, ca, srv, Options{})
			timeout := testTimeout
			if !tt.thenRight {
				timeout = 300 * time.Millisecond
			}
			r, err := u.Exchange(ctxFor(t, timeout), query("www.example.", dns.TypeA))
			if !tt.thenRight {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("got %v, %v; want the attempt to time out", r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := addrOf(t, r); got != netip.MustParseAddr("192.0.2.1") {
				t.Errorf("answer %v: the mismatched answer was taken", got)
			}
		})
	}
}

// TestResendAfterFarEndClose: a reused connection the resolver closed
// while idle costs the query nothing; it goes out on a fresh connection,
// which resumes the TLS session.
func TestResendAfterFarEndClose(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, nil)
	u := newUpstream(t, ca, srv, Options{})
	for i := range 2 {
		if i == 1 {
			srv.DropConns()
		}
		if _, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA)); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	if got := srv.Accepts(); got != 2 {
		t.Errorf("server accepted %d connections, want 2", got)
	}
}

// TestIdleTimeout: a connection nothing is sent on for IdleTimeout is
// closed by us.
func TestIdleTimeout(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, nil)
	u := newUpstream(t, ca, srv, Options{IdleTimeout: 200 * time.Millisecond})
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle connection to close", func() bool { return u.OpenConns() == 0 })
}

// TestIdleTimeoutSparesBusyConn: a connection waiting for an answer is
// not idle, however long since the query went out.
func TestIdleTimeoutSparesBusyConn(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, dottest.Delay(300*time.Millisecond, dottest.Answer("192.0.2.1")))
	u := newUpstream(t, ca, srv, Options{IdleTimeout: 50 * time.Millisecond})
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if n := srv.Accepts(); n != 1 {
		t.Errorf("server accepted %d connections, want 1", n)
	}
}

// TestClose: closing an upstream fails what is in flight on it at once,
// and what comes after.
func TestClose(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, dottest.Silent())
	u := newUpstream(t, ca, srv, Options{})
	inFlight := make(chan error, 1)
	go func() {
		_, err := u.Exchange(ctxFor(t, 30*time.Second), query("www.example.", dns.TypeA))
		inFlight <- err
	}()
	waitFor(t, "the query to reach the server", func() bool { return srv.Queries() == 1 })
	u.Close()
	if err := <-inFlight; !errors.Is(err, ErrConnClosed) {
		t.Errorf("in-flight query: got %v, want ErrConnClosed", err)
	}
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA)); !errors.Is(err, ErrConnClosed) {
		t.Errorf("query after Close: got %v, want ErrConnClosed", err)
	}
}
