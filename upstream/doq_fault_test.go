package upstream

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// answerOnce is the server's good answer, as a stream handler.
func answerOnce(q *dns.Msg, st *quic.Stream, _ *quic.Conn) {
	dottest.Reply(st, dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.1")))
}

// TestDoQServerCloses: a connection the server closes under a query is
// replaced, and the query resent on the new one, once; a connection the
// server closed while idle is replaced without a failure; a server that
// closes every connection it is asked on fails the query without a
// resend loop.
func TestDoQServerCloses(t *testing.T) {
	tests := []struct {
		name string
		// closeNext makes the server close the connection as it reads
		// the next query (nil: the server closes it while idle).
		closeNext  func() dottest.StreamHandler
		wantErr    bool
		wantReads  int64 // queries the server read, the warm-up's included
		wantAccept int64
	}{
		{"closed while idle", nil, false, 2, 2},
		{"closed under the query", func() dottest.StreamHandler {
			var n atomic.Int32
			return func(q *dns.Msg, st *quic.Stream, c *quic.Conn) {
				if n.Add(1) == 1 {
					dottest.CloseConn(doqNoError)(q, st, c)
					return
				}
				answerOnce(q, st, c)
			}
		}, false, 3, 2},
		{"closed under every query", func() dottest.StreamHandler {
			return dottest.CloseConn(doqNoError)
		}, true, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoQ(t, ca, nil)
			u := newDoQUpstream(t, ca, srv, Options{MaxConns: 1})
			if _, err := u.Exchange(ctxFor(t, testTimeout), query("warm.test.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			if tt.closeNext == nil {
				srv.CloseConns(doqNoError)
				waitFor(t, "the client to see the close", func() bool { return u.OpenConns() == 0 })
			} else {
				srv.SetStreamHandler(tt.closeNext())
			}

			_, err := u.Exchange(ctxFor(t, testTimeout), query("next.test.", dns.TypeA))
			if (err != nil) != tt.wantErr {
				t.Fatalf("query after the close: error %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, ErrConnClosed) {
				t.Errorf("error %v, want ErrConnClosed", err)
			}
			if got := srv.Queries(); got != tt.wantReads {
				t.Errorf("server read %d queries, want %d", got, tt.wantReads)
			}
			if got := srv.Accepts(); got != tt.wantAccept {
				t.Errorf("server accepted %d connections, want %d", got, tt.wantAccept)
			}
			wantErrs := uint64(0)
			if tt.wantErr {
				wantErrs = 1
			}
			if s := u.Stats(); s.Errors[ErrorConnection] != wantErrs || s.Errors.Total() != wantErrs {
				t.Errorf("errors %v, want %d connection error(s)", s.Errors, wantErrs)
			}
		})
	}
}

// TestDoQBadAnswers: an answer that breaks DoQ's framing (a message ID
// other than 0, the stream's end inside the answer) fails the query as a
// bad answer and closes the connection with DOQ_PROTOCOL_ERROR; one
// that is merely no valid answer fails the query alone; a reset stream
// is a connection error. Each is counted, and the next query is
// answered.
func TestDoQBadAnswers(t *testing.T) {
	tests := []struct {
		name       string
		stream     dottest.StreamHandler
		wantKind   ErrorKind
		wantClosed bool // the connection was closed for it
	}{
		{"non-zero ID", func(q *dns.Msg, st *quic.Stream, _ *quic.Conn) {
			m := dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.1"))
			m.Id = 0x1234
			dottest.Reply(st, m)
		}, ErrorBadAnswer, true},
		{"stream ends inside the answer", dottest.WriteRaw([]byte{0, 100, 0, 0, 0x81, 0x80}), ErrorBadAnswer, true},
		{"stream ends inside the length", dottest.WriteRaw([]byte{0}), ErrorBadAnswer, true},
		{"stream ends with no answer", dottest.WriteRaw(nil), ErrorBadAnswer, true},
		{"garbage", dottest.WriteRaw([]byte{0, 4, 0, 0, 0xde, 0xad}), ErrorBadAnswer, false},
		{"answer to another question", func(q *dns.Msg, st *quic.Stream, c *quic.Conn) {
			q.Question[0].Name = "other.test."
			answerOnce(q, st, c)
		}, ErrorBadAnswer, false},
		{"stream reset", dottest.ResetStream(doqRequestCancelled), ErrorBadAnswer, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoQ(t, ca, nil)
			srv.SetStreamHandler(tt.stream)
			u := newDoQUpstream(t, ca, srv, Options{})

			_, err := u.Exchange(ctxFor(t, testTimeout), query("bad.test.", dns.TypeA))
			if err == nil {
				t.Fatal("bad answer accepted")
			}
			if got := classify(err); got != tt.wantKind {
				t.Errorf("error %v classified %v, want %v", err, got, tt.wantKind)
			}
			if s := u.Stats(); s.Errors[tt.wantKind] != 1 || s.Errors.Total() != 1 {
				t.Errorf("errors %v, want one %v", s.Errors, tt.wantKind)
			}

			srv.SetStreamHandler(nil)
			if _, err := u.Exchange(ctxFor(t, testTimeout), query("good.test.", dns.TypeA)); err != nil {
				t.Fatalf("query after the bad answer: %v", err)
			}
			wantAccepts := int64(1)
			if tt.wantClosed {
				wantAccepts = 2
				waitFor(t, "the server to see the close", func() bool { return len(srv.CloseErrors()) == 1 })
				if code := closeCode(srv.CloseErrors()[0]); code != doqProtocolError {
					t.Errorf("connection ended by %v, want the client's DOQ_PROTOCOL_ERROR", srv.CloseErrors()[0])
				}
			}
			if got := srv.Accepts(); got != wantAccepts {
				t.Errorf("server accepted %d connections, want %d", got, wantAccepts)
			}
		})
	}
}

// TestDoQCertificates: the server's certificate is verified as for DoT,
// name and SPKI pins, before any query is sent; a refusal is a TLS error.
func TestDoQCertificates(t *testing.T) {
	ca := dottest.NewCA(t)
	other := dottest.NewCA(t)
	tests := []struct {
		name    string
		cert    func(t *testing.T) dottest.DoQOptions
		pins    func(t *testing.T, srv dottest.DoQOptions) [][]byte
		wantErr bool
	}{
		{"valid", leafFor(ca, testTLSName), nil, false},
		{"pinned", leafFor(ca, testTLSName), func(_ *testing.T, o dottest.DoQOptions) [][]byte { return [][]byte{dottest.SPKIPin(o.Cert)} }, false},
		{"another name", leafFor(ca, "other.test"), nil, true},
		{"an untrusted CA", leafFor(other, testTLSName), nil, true},
		{"pin mismatch", leafFor(ca, testTLSName), func(t *testing.T, _ dottest.DoQOptions) [][]byte {
			return [][]byte{dottest.SPKIPin(ca.Leaf(t, testTLSName))}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.cert(t)
			srv := dottest.StartDoQ(t, opts)
			var pins [][]byte
			if tt.pins != nil {
				pins = tt.pins(t, opts)
			}
			u := newDoQUpstream(t, ca, srv, Options{SPKIPins: pins})
			_, err := u.Exchange(ctxFor(t, testTimeout), query("cert.test.", dns.TypeA))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr {
				return
			}
			if got := classify(err); got != ErrorTLS {
				t.Errorf("error %v classified %v, want tls", err, got)
			}
			if srv.Queries() != 0 {
				t.Errorf("server read %d queries over a refused connection", srv.Queries())
			}
		})
	}
}

func leafFor(ca *dottest.CA, name string) func(t *testing.T) dottest.DoQOptions {
	return func(t *testing.T) dottest.DoQOptions {
		return dottest.DoQOptions{Cert: ca.Leaf(t, name)}
	}
}
