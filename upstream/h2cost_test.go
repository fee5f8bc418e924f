package upstream

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// settingsFrame is a SETTINGS frame with settings, as the reader gets it.
func settingsFrame(t *testing.T, settings ...http2.Setting) *http2.SettingsFrame {
	t.Helper()
	var buf bytes.Buffer
	if err := http2.NewFramer(&buf, nil).WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	f, err := http2.NewFramer(nil, &buf).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	return f.(*http2.SettingsFrame)
}

// TestH2HeaderBlockReuse: the header blocks of a connection's requests,
// some sent again as they are (headerBlock), decode in order, with the
// server's one HPACK decoder, to each request's fields, through lengths
// that change and a server that shrinks its table to nothing and grows it
// back; and a block is sent again only where it was all table references.
func TestH2HeaderBlockReuse(t *testing.T) {
	c := &h2Conn{authority: "dns.example:8443", path: "/dns-query", streams: map[uint32]*h2Stream{},
		wfr: http2.NewFramer(io.Discard, nil), initWindow: 65535}
	c.enc = hpack.NewEncoder(&c.hbuf)
	dec := hpack.NewDecoder(4096, nil)

	steps := []struct {
		length    int
		tableSize int64 // the server's SETTINGS_HEADER_TABLE_SIZE before it, -1 for none
		reused    bool  // whether the block is the one before, sent again
	}{
		{length: 128, tableSize: -1},
		{length: 128, tableSize: -1}, // all in the table now: kept
		{length: 128, tableSize: -1, reused: true},
		{length: 256, tableSize: -1}, // a new length: encoded
		{length: 256, tableSize: -1},
		{length: 256, tableSize: -1, reused: true},
		{length: 128, tableSize: -1}, // still in the table: encoded once, then kept
		{length: 128, tableSize: -1, reused: true},
		{length: 128, tableSize: 0}, // the table dropped: encoded, literals
		{length: 128, tableSize: -1},
		{length: 128, tableSize: 4096}, // the encoder keeps its table at 0
		{length: 128, tableSize: -1},
	}
	var last []byte
	for i, s := range steps {
		if s.tableSize >= 0 {
			dec.SetAllowedMaxDynamicTableSize(uint32(s.tableSize))
			if err := c.onSettings(settingsFrame(t, http2.Setting{ID: http2.SettingHeaderTableSize, Val: uint32(s.tableSize)})); err != nil {
				t.Fatalf("step %d: SETTINGS: %v", i, err)
			}
		}
		c.wmu.Lock()
		reused := c.hreuse && c.hlen == s.length
		block := slices.Clone(c.headerBlock(s.length))
		c.wmu.Unlock()
		if reused != s.reused {
			t.Errorf("step %d: block %x after %x: sent again %v, want %v", i, block, last, reused, s.reused)
		}
		if reused && (!bytes.Equal(block, last) || len(block) != requestFields) {
			t.Errorf("step %d: block %x sent again, after %x", i, block, last)
		}
		last = block
		fields, err := dec.DecodeFull(block)
		if err != nil {
			t.Fatalf("step %d: decoding %x: %v", i, block, err)
		}
		want := []hpack.HeaderField{
			{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"},
			{Name: ":authority", Value: "dns.example:8443"}, {Name: ":path", Value: "/dns-query"},
			{Name: "content-type", Value: dohMediaType}, {Name: "accept", Value: dohMediaType},
			{Name: "content-length", Value: strconv.Itoa(s.length)},
		}
		got := make([]hpack.HeaderField, len(fields))
		for j, f := range fields {
			got[j] = hpack.HeaderField{Name: f.Name, Value: f.Value}
		}
		if !slices.Equal(got, want) {
			t.Errorf("step %d: fields %v, want %v", i, got, want)
		}
	}
}

// TestH2AnswerKeepsNoBody: the message finish hands over owns all it
// holds, for every kind of record a resolver sends (an answer in one DATA
// frame is unpacked from the framer's buffer, which the next frame
// overwrites).
func TestH2AnswerKeepsNoBody(t *testing.T) {
	q := query("a.test.", dns.TypeA)
	r := answerOfEveryKind(t, q)
	body, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	st := &h2Stream{status: http.StatusOK, ctype: dohMediaType, q: q.Question[0], ch: make(chan result, 1)}
	st.finish(body)
	res := <-st.ch
	if res.err != nil {
		t.Fatal(res.err)
	}
	before := res.msg.String()
	for i := range body {
		body[i] = 0xa5
	}
	if after := res.msg.String(); after != before {
		t.Errorf("the answer changed with the body it came in:\n%s\nnow\n%s", before, after)
	}
}

// TestH2WindowUpdatesBatched: the client gives the server's DATA back in
// few WINDOW_UPDATE frames: none for a stream (a DNS answer is below half
// its window), and one for the connection each time half of its window
// has been used, not one a response.
func TestH2WindowUpdatesBatched(t *testing.T) {
	const (
		records = 3800 // an answer of some 60 KB: below half a stream's window
		queries = 150  // some 9 MB: over half the connection's window, once
	)
	q := query("big.test.", dns.TypeA)
	q.Id = 0 // as DoH sends it
	r := new(dns.Msg).SetReply(q)
	for i := range records {
		r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: "big.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IPv4(192, 0, byte(i>>8), byte(i))})
	}
	r.Compress = true
	answer, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(answer) >= h2StreamWindow/2 || queries*len(answer) <= h2ConnWindow/2 || queries*len(answer) >= h2ConnWindow {
		t.Fatalf("an answer of %d octets does not make the test", len(answer))
	}

	var mu sync.Mutex
	var updates []*http2.WindowUpdateFrame // the client's, in order
	ca := dottest.NewCA(t)
	addr, _ := startRawH2(t, ca, func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, acks *atomic.Int64) {
		fr.WriteSettings()
		serveFrames(fr, acks, frameHooks{data: func(f *http2.DataFrame) {
			if !f.StreamEnded() {
				return
			}
			enc(false, f.StreamID, hpack.HeaderField{Name: ":status", Value: "200"},
				hpack.HeaderField{Name: "content-type", Value: dohMediaType},
				hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(answer))})
			for rest := answer; len(rest) > 0; {
				n := min(len(rest), 16<<10)
				fr.WriteData(f.StreamID, n == len(rest), rest[:n])
				rest = rest[n:]
			}
		}, update: func(f *http2.WindowUpdateFrame) {
			mu.Lock()
			updates = append(updates, &http2.WindowUpdateFrame{FrameHeader: f.FrameHeader, Increment: f.Increment})
			mu.Unlock()
		}})
	})
	u := newUpstreamAt(t, ca, addr, Options{Transport: HTTPS, MaxConns: 1})
	ctx := ctxFor(t, testTimeout)
	for i := range queries {
		m, err := u.Exchange(ctx, q.Copy())
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if len(m.Answer) != records {
			t.Fatalf("query %d: %d records, want %d", i, len(m.Answer), records)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	var conn []uint32
	for _, f := range updates {
		if f.StreamID != 0 {
			t.Errorf("WINDOW_UPDATE of %d for stream %d: an answer never needs one", f.Increment, f.StreamID)
			continue
		}
		conn = append(conn, f.Increment)
	}
	// The first is the connection's window grown at the start.
	if len(conn) != 2 || conn[0] != h2ConnWindow-65535 || conn[1] < h2ConnWindow/2 {
		t.Errorf("connection WINDOW_UPDATEs %v for %d octets of answers, want %d at the start and one of at least %d",
			conn, queries*len(answer), h2ConnWindow-65535, h2ConnWindow/2)
	}
}
