package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// startDoQ starts a DoQ server with a certificate from ca for
// testTLSName.
func startDoQ(t *testing.T, ca *dottest.CA, h dottest.Handler) *dottest.DoQServer {
	t.Helper()
	return dottest.StartDoQ(t, dottest.DoQOptions{Cert: ca.Leaf(t, testTLSName), Handler: h})
}

// newDoQUpstream builds a QUIC Upstream for srv trusting ca, with opts'
// other fields as given.
func newDoQUpstream(t *testing.T, ca *dottest.CA, srv *dottest.DoQServer, opts Options) *Upstream {
	t.Helper()
	opts.Transport = QUIC
	return newUpstreamAt(t, ca, srv.Addr(), opts)
}

// TestDoQExchange checks what goes over the wire and what comes back: the
// server reads a query with ID 0 (RFC 9250 §4.2.1), padded to a multiple
// of 128 octets, without the client's own EDNS options, over a connection
// that negotiated "doq" for the configured name; the caller gets the
// answer with its ID and question and without the padding.
func TestDoQExchange(t *testing.T) {
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"}
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		edit   func(*dns.Msg)
		wantDO bool
	}{
		{name: "no EDNS", qname: "ExAmPle.COM.", qtype: dns.TypeA},
		{name: "DO bit carried", qname: "example.org.", qtype: dns.TypeAAAA, edit: func(q *dns.Msg) { q.SetEdns0(4096, true) }, wantDO: true},
		{name: "client cookie dropped", qname: "a.b.example.", qtype: dns.TypeA, edit: func(q *dns.Msg) {
			q.SetEdns0(4096, false)
			q.IsEdns0().Option = append(q.IsEdns0().Option, cookie)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoQ(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
				m := dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.7"))
				if opt := m.IsEdns0(); opt != nil {
					opt.Option = []dns.EDNS0{&dns.EDNS0_PADDING{Padding: make([]byte, 100)}}
				}
				reply(m)
			})
			u := newDoQUpstream(t, ca, srv, Options{})

			q := query(tt.qname, tt.qtype)
			q.Id = 4242
			if tt.edit != nil {
				tt.edit(q)
			}
			r, err := u.Exchange(ctxFor(t, testTimeout), q)
			if err != nil {
				t.Fatal(err)
			}
			if r.Id != 4242 || r.Question[0] != q.Question[0] {
				t.Errorf("answer has ID %d, question %v; want 4242, %v", r.Id, r.Question[0], q.Question[0])
			}
			if opt := r.IsEdns0(); opt != nil && len(opt.Option) != 0 {
				t.Errorf("answer kept EDNS options %v, want the padding gone", opt.Option)
			}

			got := srv.Received()
			if len(got) != 1 {
				t.Fatalf("server read %d queries, want 1", len(got))
			}
			wire := got[0]
			if id := binary.BigEndian.Uint16(wire); id != 0 {
				t.Errorf("query sent with ID %d, want 0", id)
			}
			if len(wire)%paddingBlock != 0 {
				t.Errorf("query of %d octets, want a multiple of %d", len(wire), paddingBlock)
			}
			sent := new(dns.Msg)
			if err := sent.Unpack(wire); err != nil {
				t.Fatal(err)
			}
			opt := sent.IsEdns0()
			if opt == nil {
				t.Fatal("query sent without EDNS")
			}
			if opt.Do() != tt.wantDO {
				t.Errorf("DO bit %v, want %v", opt.Do(), tt.wantDO)
			}
			if len(opt.Option) != 1 || opt.Option[0].Option() != dns.EDNS0PADDING {
				t.Errorf("query sent with EDNS options %v, want the padding only", opt.Option)
			}

			waitFor(t, "the server to record the handshake", func() bool { return len(srv.States()) == 1 })
			states := srv.States()
			if tls := states[0].TLS; tls.NegotiatedProtocol != alpnDoQ || tls.ServerName != testTLSName {
				t.Errorf("ALPN %q, SNI %q; want %q, %q", tls.NegotiatedProtocol, tls.ServerName, alpnDoQ, testTLSName)
			}
			if s := u.Stats(); s.Transport != "quic" || s.Answers != 1 || s.OpenConns != 1 {
				t.Errorf("stats: transport %q, %d answers, %d connections; want quic, 1, 1", s.Transport, s.Answers, s.OpenConns)
			}
		})
	}
}

// TestDoQConnections: queries share the connections, many streams at
// once, each query with its own answer; no more connections are opened
// than MaxConns allows. A query beyond the streams the server allows a
// connection waits for a stream; a connection with busyThreshold queries
// in flight makes the carrier dial another, which takes the next ones.
func TestDoQConnections(t *testing.T) {
	// serverStreams is the streams the server allows a connection at once.
	const serverStreams = 100
	type burst struct {
		queries int
		held    int64 // queries the server holds once the burst is out
		conns   int   // connections open then
	}
	tests := []struct {
		name     string
		maxConns int
		bursts   []burst
	}{
		{"one connection, queries beyond its streams wait", 1, []burst{{150, serverStreams, 1}}},
		{"not busy, one connection", 2, []burst{{busyThreshold, busyThreshold, 1}}},
		{"busy, a second connection and no third", 2, []burst{
			{busyThreshold + 1, busyThreshold + 1, 2},
			// The second connection takes these until it is as loaded as
			// the first; then they alternate, under the server's limit.
			{2 * busyThreshold, 3*busyThreshold + 1, 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			gate := make(chan struct{})
			srv := dottest.StartDoQ(t, dottest.DoQOptions{
				Cert:       ca.Leaf(t, testTLSName),
				MaxStreams: serverStreams,
				Handler: func(q *dns.Msg, reply func(*dns.Msg)) {
					<-gate
					answerByIndex()(q, reply)
				},
			})
			release := sync.OnceFunc(func() { close(gate) })
			t.Cleanup(release)
			u := newDoQUpstream(t, ca, srv, Options{MaxConns: tt.maxConns})

			ctx := ctxFor(t, testTimeout)
			var wg sync.WaitGroup
			total := 0
			for _, b := range tt.bursts {
				for i := total; i < total+b.queries; i++ {
					wg.Go(func() {
						r, err := u.Exchange(ctx, query(indexName(i), dns.TypeA))
						if err != nil {
							t.Errorf("query %d: %v", i, err)
							return
						}
						if got := addrOf(t, r); got != indexAddr(i) {
							t.Errorf("query %d got %v, another's answer", i, got)
						}
					})
				}
				total += b.queries
				waitFor(t, fmt.Sprintf("the server to hold %d queries", b.held), func() bool { return srv.Queries() == b.held })
				waitFor(t, fmt.Sprintf("%d connections", b.conns), func() bool { return u.OpenConns() == b.conns })
			}
			release()
			wg.Wait()
			if got, want := srv.Accepts(), int64(tt.bursts[len(tt.bursts)-1].conns); got != want {
				t.Errorf("server accepted %d connections, want %d", got, want)
			}
			if got := srv.Queries(); got != int64(total) {
				t.Errorf("server read %d queries, want %d", got, total)
			}
		})
	}
}

// TestDoQCancel: a query whose context ends while the server sits on it
// returns at once, counted as abandoned, and its stream is cancelled
// with DOQ_REQUEST_CANCELLED; the connection carries the next query.
func TestDoQCancel(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startDoQ(t, ca, nil)
	codes := make(chan uint64, 1)
	srv.SetStreamHandler(func(_ *dns.Msg, st *quic.Stream, _ *quic.Conn) {
		<-st.Context().Done()
		codes <- streamErrorCode(context.Cause(st.Context()))
	})
	u := newDoQUpstream(t, ca, srv, Options{})

	ctx, cancel := context.WithCancel(ctxFor(t, testTimeout))
	done := make(chan error, 1)
	go func() {
		_, err := u.Exchange(ctx, query("slow.test.", dns.TypeA))
		done <- err
	}()
	waitFor(t, "the server to read the query", func() bool { return srv.Queries() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled query returned %v, want context.Canceled", err)
	}
	if code := <-codes; code != doqRequestCancelled {
		t.Errorf("stream ended with code %#x, want DOQ_REQUEST_CANCELLED %#x", code, doqRequestCancelled)
	}
	if s := u.Stats(); s.Abandoned != 1 || s.Errors.Total() != 0 {
		t.Errorf("%d abandoned, %d errors; want 1, 0", s.Abandoned, s.Errors.Total())
	}

	srv.SetStreamHandler(nil)
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("next.test.", dns.TypeA)); err != nil {
		t.Fatalf("query after the cancelled one: %v", err)
	}
	if srv.Accepts() != 1 {
		t.Errorf("server accepted %d connections, want the one", srv.Accepts())
	}
}

// streamErrorCode is the code a stream was cancelled with, or
// ^uint64(0) when err is no stream's error.
func streamErrorCode(err error) uint64 {
	var se *quic.StreamError
	if !errors.As(err, &se) {
		return ^uint64(0)
	}
	return uint64(se.ErrorCode)
}
