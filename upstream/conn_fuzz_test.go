package upstream

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// clientID is the ID of the client queries in the fuzz targets: restore
// must put it back whatever the upstream's answer carried.
const clientID = 0x4242

// FuzzDeliver feeds arbitrary answer bytes to what the reader loop does
// with one answer, on a connection with one query waiting: conn.deliver,
// then restore, as Exchange does with what deliver hands over. The
// waiting query's question is fuzzed too; matchID says whether the answer
// carries the query's ID (the fuzzer cannot guess the random one).
// Properties:
//
//   - the waiting query gets an answer only when the ID is its own, and
//     then an answer that unpacks, has QR set and its question, or an
//     ErrBadAnswer when it does not unpack; every other answer is dropped
//     and the query still waits;
//   - a well-formed answer with its ID and question is never dropped;
//   - restore gives the answer the client's ID and question, leaves no
//     padding in it and no record that does not belong to the question
//     (checkScrubbed).
func FuzzDeliver(f *testing.F) {
	for _, seed := range answerSeeds(f) {
		f.Add(seed, "example.com.", dns.TypeA, true)
		f.Add(seed, "example.com.", dns.TypeA, false)
	}
	f.Add(answerSeeds(f)[0], "EXAMPLE.com.", dns.TypeA, true)
	f.Add(answerSeeds(f)[0], "example.org.", dns.TypeA, true)
	f.Add(answerSeeds(f)[0], "example.com.", dns.TypeAAAA, true)
	f.Add(answerSeeds(f)[0], `ex\.ample.com.`, dns.TypeA, true)

	c := stubConn(f)
	f.Fuzz(func(t *testing.T, answer []byte, name string, qtype uint16, matchID bool) {
		if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(name) {
			return
		}
		q := dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}
		cl := &call{q: q, ch: make(chan result, 1)}
		id, err := c.register(cl)
		if err != nil {
			t.Fatal(err)
		}
		buf := bytes.Clone(answer)
		if len(buf) >= 2 && (matchID || binary.BigEndian.Uint16(buf) == id) {
			binary.BigEndian.PutUint16(buf, id)
			if !matchID {
				binary.BigEndian.PutUint16(buf, id+1)
			}
		}
		c.deliver(buf)

		c.mu.Lock()
		_, waiting := c.pending[id]
		if int(c.load.Load()) != len(c.pending) {
			t.Errorf("load %d, %d pending", c.load.Load(), len(c.pending))
		}
		c.mu.Unlock()
		var r result
		select {
		case r = <-cl.ch:
			if waiting {
				t.Fatal("answer delivered, query still pending")
			}
		default:
			if !waiting {
				t.Fatal("query no longer pending, nothing delivered")
			}
			c.unregister(id)
			if m := new(dns.Msg); matchID && len(buf) >= 2 && m.Unpack(buf) == nil && checkAnswer(m, q) == nil {
				t.Fatalf("a valid answer was dropped: %v", m)
			}
			return
		}

		if !matchID || len(buf) < 2 {
			t.Fatalf("an answer with another ID was delivered: %v %v", r.msg, r.err)
		}
		if r.err != nil {
			if !errors.Is(r.err, ErrBadAnswer) || new(dns.Msg).Unpack(buf) == nil {
				t.Fatalf("delivered error %v for an answer that unpacks", r.err)
			}
			return
		}
		checkDelivered(t, r.msg, id, q)
		cq := &dns.Msg{MsgHdr: dns.MsgHdr{Id: clientID}, Question: []dns.Question{q}}
		orig := shallowCopy(r.msg)
		restore(r.msg, cq)
		checkRestored(t, r.msg, cq)
		checkScrubbed(t, r.msg, orig, q)
	})
}

// checkDelivered checks an answer that reached the query with ID id and
// question q.
func checkDelivered(t *testing.T, m *dns.Msg, id uint16, q dns.Question) {
	t.Helper()
	if m == nil {
		t.Fatal("nil answer delivered")
	}
	if m.Id != id || !m.Response {
		t.Fatalf("delivered ID %#x QR %v to query %#x", m.Id, m.Response, id)
	}
	switch {
	case len(m.Question) == 0 && m.Rcode != dns.RcodeSuccess:
		// An error answer without the question, taken by its ID.
	case len(m.Question) != 1:
		t.Fatalf("delivered an answer with %d questions", len(m.Question))
	case m.Question[0].Qtype != q.Qtype || m.Question[0].Qclass != q.Qclass ||
		!strings.EqualFold(m.Question[0].Name, q.Name):
		t.Fatalf("delivered answer to %v for query %v", m.Question[0], q)
	}
}

// checkRestored checks that m, restored for the client query q, has its
// ID and question and no padding in any OPT record.
func checkRestored(t *testing.T, m, q *dns.Msg) {
	t.Helper()
	if m.Id != q.Id || len(m.Question) != 1 || m.Question[0] != q.Question[0] {
		t.Fatalf("restored ID %#x question %v, want %#x %v", m.Id, m.Question, q.Id, q.Question[0])
	}
	for _, rr := range m.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			for _, o := range opt.Option {
				if o.Option() == dns.EDNS0PADDING {
					t.Fatalf("restored answer keeps padding: %v", m)
				}
			}
		}
	}
}

// stubConn returns a conn whose TLS connection never completes its
// handshake: deliver, register and unregister work on it, and its reader
// loop waits until the test ends.
func stubConn(tb testing.TB) *conn {
	near, far := net.Pipe()
	c := newConn(tls.Client(near, &tls.Config{ServerName: testTLSName}), time.Hour,
		func() time.Duration { return time.Hour })
	tb.Cleanup(func() {
		far.Close()
		<-c.done
	})
	return c
}
