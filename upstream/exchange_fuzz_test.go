package upstream

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// FuzzExchange runs Exchange against a DoT server that answers every
// query first with the fuzzer's bytes, framed, carrying the query's ID
// when matchID is set, and then with the right answer. The bytes take the
// real path: TLS, the reader loop, deliver, restore. Properties: Exchange
// returns the fuzzer's answer, scrubbed, when it is a valid one (or a
// right one), the right answer otherwise, either with the client's ID and
// question and no padding; or ErrBadAnswer when the fuzzer's bytes had
// the ID and did not unpack. It never times out: the stream stays in step whatever
// the bytes.
func FuzzExchange(f *testing.F) {
	for _, seed := range answerSeeds(f) {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	ca := dottest.NewCA(f)
	srv := startRawServer(f, ca.Leaf(f, testTLSName))
	u, err := New(Options{Name: "fuzz", Addr: srv.addr, TLSName: testTLSName, RootCAs: ca.Pool, IdleTimeout: time.Minute})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(u.Close)

	f.Fuzz(func(t *testing.T, answer []byte, matchID bool) {
		if len(answer) > dns.MaxMsgSize {
			return
		}
		srv.next.Store(&rawAnswer{wire: answer, matchID: matchID})
		// Always the same question: a right answer left over from the
		// last query has another ID, and would be right for this one too.
		q := new(dns.Msg).SetQuestion("Example.COM.", dns.TypeA)
		q.Id = clientID
		q.SetEdns0(1232, false)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		r, err := u.Exchange(ctx, q)

		// What was sent, its ID included: a compression pointer may point
		// into the ID.
		var sent []byte
		if p := srv.sent.Swap(nil); p != nil {
			sent = *p
		}
		fuzzed := new(dns.Msg)
		unpacks := fuzzed.Unpack(sent) == nil
		if err != nil {
			if !errors.Is(err, ErrBadAnswer) || !matchID || len(sent) < 2 || unpacks {
				t.Fatalf("Exchange: %v", err)
			}
			return
		}
		checkRestored(t, r, q)
		if matchID && unpacks && checkAnswer(fuzzed, q.Question[0]) == nil {
			// The right answer to the last query, when the fuzzer's was
			// taken instead, is left on the wire; its ID is this query's
			// once in 65536 times.
			want := shallowCopy(fuzzed)
			want.MsgHdr = fuzzed.MsgHdr
			restore(want, q) // scrubbed as Exchange does
			if !isRightAnswer(r) && (r.Rcode != want.Rcode || !sameRecords(r, want)) {
				t.Fatalf("got %v, want the fuzzer's valid answer, scrubbed: %v", r, want)
			}
		} else if !isRightAnswer(r) {
			t.Fatalf("got %v, want the right answer", r)
		}
	})
}

// sameRecords reports whether a and b hold the same records in each
// section.
func sameRecords(a, b *dns.Msg) bool {
	text := func(rrs []dns.RR) string {
		var s strings.Builder
		for _, rr := range rrs {
			s.WriteString(rr.String() + "\n")
		}
		return s.String()
	}
	return text(a.Answer) == text(b.Answer) && text(a.Ns) == text(b.Ns) && text(a.Extra) == text(b.Extra)
}

// rightAddr is the address in the right answer the raw server sends.
var rightAddr = net.IPv4(192, 0, 2, 53)

func isRightAnswer(r *dns.Msg) bool {
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return false
	}
	a, ok := r.Answer[0].(*dns.A)
	return ok && a.A.Equal(rightAddr)
}

// rawAnswer is what the raw server sends before the right answer.
type rawAnswer struct {
	wire    []byte
	matchID bool
}

// rawServer is a DoT server that writes arbitrary bytes as an answer,
// which dottest.Server, packing every answer it sends, cannot.
type rawServer struct {
	addr netip.AddrPort
	next atomic.Pointer[rawAnswer] // what to send before the right answer
	sent atomic.Pointer[[]byte]    // what was sent, with the ID written in
}

// startRawServer starts a rawServer on loopback presenting cert, stopped
// when the test ends.
func startRawServer(tb testing.TB, cert tls.Certificate) *rawServer {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{alpnDoT},
	})
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	dottest.Serve(tb, ln, s.serve)
	return s
}

// serve answers each query on c with the next raw answer, then the right
// one.
func (s *rawServer) serve(c net.Conn) {
	for {
		buf, err := dottest.ReadMsg(c)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		if err := q.Unpack(buf); err != nil || len(q.Question) != 1 {
			return
		}
		right := new(dns.Msg).SetReply(q)
		right.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   rightAddr,
		}}
		rightWire, err := right.Pack()
		if err != nil {
			return
		}
		var raw []byte
		if next := s.next.Load(); next != nil {
			raw = append(raw, next.wire...)
			if len(raw) >= 2 && (next.matchID || binary.BigEndian.Uint16(raw) == q.Id) {
				id := q.Id
				if !next.matchID {
					id++ // the fuzzer's ID happens to be the query's
				}
				binary.BigEndian.PutUint16(raw, id)
			}
		}
		s.sent.Store(&raw)
		out := frame(nil, raw)
		out = frame(out, rightWire)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// frame appends msg to b with its length prefix.
func frame(b, msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(msg))), msg...)
}
