package upstream

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// TestH2AnswerKeepsNoFrameBuffer: a DoH/2 answer that comes in one DATA
// frame is unpacked from the reader's framer buffer, which the framer
// reads the next frame into. Over a real connection, as
// TestAnswerKeepsNoBuffer does for DoT: a long answer first grows that
// buffer; the answer of every kind is read into it; the long one again
// overwrites it; the answer already handed on must not change.
func TestH2AnswerKeepsNoFrameBuffer(t *testing.T) {
	every := query("every.test.", dns.TypeANY)
	every.Id = 0 // as DoH sends it
	everyWire, err := answerOfEveryKind(t, every).Pack()
	if err != nil {
		t.Fatal(err)
	}
	long := query("every.test.", dns.TypeTXT)
	long.Id = 0
	longWire, err := longAnswer(long).Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(everyWire) >= len(longWire) {
		t.Fatalf("the answer of every kind (%d octets) is not shorter than the long one (%d): it would be read into a new buffer", len(everyWire), len(longWire))
	}

	var oneFrame atomic.Int64 // answers sent in one DATA frame
	ca := dottest.NewCA(t)
	addr, _ := startRawH2(t, ca, func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, acks *atomic.Int64) {
		fr.WriteSettings()
		serveFrames(fr, acks, frameHooks{data: func(f *http2.DataFrame) {
			if !f.StreamEnded() {
				return
			}
			var q dns.Msg
			if q.Unpack(f.Data()) != nil || len(q.Question) != 1 {
				return
			}
			answer := longWire
			if q.Question[0].Qtype == dns.TypeANY {
				answer = everyWire
			}
			// Counted before it is written: once the client has the
			// answer, the test reads the count.
			oneFrame.Add(1)
			enc(false, f.StreamID, hpack.HeaderField{Name: ":status", Value: "200"},
				hpack.HeaderField{Name: "content-type", Value: dohMediaType},
				hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(answer))})
			fr.WriteData(f.StreamID, true, answer)
		}})
	})
	u := newUpstreamAt(t, ca, addr, Options{Transport: HTTPS, MaxConns: 1})
	ctx := ctxFor(t, testTimeout)
	askLong := func() {
		t.Helper()
		m, err := u.Exchange(ctx, long.Copy())
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Answer) != 1 {
			t.Fatalf("long answer: %v", m)
		}
	}
	askLong()
	first, err := u.Exchange(ctx, every.Copy())
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Answer) != 8 {
		t.Fatalf("%d answer records, want 8: %v", len(first.Answer), first)
	}
	before := first.String()
	askLong()
	if after := first.String(); after != before {
		t.Errorf("the answer changed when the next frame was read over it:\nbefore %s\nafter  %s", before, after)
	}
	if n := oneFrame.Load(); n != 3 {
		t.Errorf("%d answers sent in one DATA frame, want 3", n)
	}
}
