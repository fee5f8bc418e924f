package upstream

// Edge cases of the DoH HTTP/2 client that the issue-13 review found,
// each against a scripted raw HTTP/2 server: what a query meets when the
// server is at its stream limit, sends SETTINGS out of range, resets a
// stream waiting for window, ends a stream with an interim response, or
// sends GOAWAY on a connection dialed for the query.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// rawScript plays one server connection; acks counts the client's
// SETTINGS ACKs seen.
type rawScript func(fr *http2.Framer, enc func(end bool, id uint32, fields ...hpack.HeaderField) error, acks *atomic.Int64)

// startRawH2 starts a minimal TLS+h2 server on loopback running script
// on each connection.
func startRawH2(t *testing.T, ca *dottest.CA, script rawScript) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	conf := &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, testTLSName)}, NextProtos: []string{"h2"}}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	var acks atomic.Int64
	dottest.Serve(t, ln, func(c net.Conn) {
		pre := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, pre); err != nil {
			return
		}
		fr := http2.NewFramer(c, c)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		var hb bytes.Buffer
		he := hpack.NewEncoder(&hb)
		enc := func(end bool, id uint32, fields ...hpack.HeaderField) error {
			hb.Reset()
			for _, f := range fields {
				he.WriteField(f)
			}
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: end})
		}
		script(fr, enc, &acks)
	})
	return netip.MustParseAddrPort(ln.Addr().String()), &acks
}

// serveLoop reads frames, ACKs SETTINGS, counts ACKs, and calls onHeaders
// for each request's HEADERS and onData for each DATA frame.
func serveLoop(fr *http2.Framer, acks *atomic.Int64, onHeaders func(id uint32), onData func(f *http2.DataFrame)) {
	serveFrames(fr, acks, frameHooks{headers: onHeaders, data: onData})
}

// frameHooks are what a scripted server does with the client's frames
// besides SETTINGS, which serveFrames ACKs and counts; nil: nothing.
type frameHooks struct {
	headers func(id uint32)
	data    func(f *http2.DataFrame)
	update  func(f *http2.WindowUpdateFrame)
	goAway  func(f *http2.GoAwayFrame)
	reset   func(f *http2.RSTStreamFrame)
}

// serveFrames reads frames until the connection ends, ACKs SETTINGS,
// counts the client's ACKs in acks, and hands every other frame to its
// hook.
func serveFrames(fr *http2.Framer, acks *atomic.Int64, h frameHooks) {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				acks.Add(1)
			} else {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if h.headers != nil {
				h.headers(f.StreamID)
			}
		case *http2.DataFrame:
			if h.data != nil {
				h.data(f)
			}
		case *http2.WindowUpdateFrame:
			if h.update != nil {
				h.update(f)
			}
		case *http2.GoAwayFrame:
			if h.goAway != nil {
				h.goAway(f)
			}
		case *http2.RSTStreamFrame:
			if h.reset != nil {
				h.reset(f)
			}
		}
	}
}

// timed runs f and returns its error and how long it took.
func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// TestH2EdgeAtStreamLimit: with the only connection at the server's
// MAX_CONCURRENT_STREAMS, the selector's fast path (h2Carrier.send) does
// not wait in the query's goroutine for a stream: the query is hedged
// and the healthy second upstream answers it.
func TestH2EdgeAtStreamLimit(t *testing.T) {
	ca := dottest.NewCA(t)
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	byIndex := answerByIndex()
	slow := startH2Raw(t, ca, dottest.H2RawOptions{
		Settings: []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 1}},
		Handler: func(q *dns.Msg, reply func(*dns.Msg)) {
			if q.Question[0].Name == "hold.test." {
				<-gate
			}
			byIndex(q, reply)
		},
	})
	uSlow := newH2Upstream(t, ca, slow, Options{MaxConns: 1})
	warmUp(t, uSlow, slow)
	fast := startServer(t, ca, answerByIndex())
	uFast := newUpstream(t, ca, fast, Options{})
	pol, _ := NewPolicy(PolicyOrdered)
	s := newSelector(t, SelectorOptions{Policy: pol, AttemptTimeout: 500 * time.Millisecond, HedgeDelay: 20 * time.Millisecond}, uSlow, uFast)

	go uSlow.Exchange(ctxFor(t, testTimeout), query("hold.test.", dns.TypeA))
	waitFor(t, "the held stream", func() bool { return slow.Requests() == 2 })

	const queryTimeout = 3 * time.Second
	took, err := timed(func() error {
		_, err := resolve(s, ctxFor(t, queryTimeout), query(indexName(7), dns.TypeA))
		return err
	})
	t.Logf("took %v, err %v", took, err)
	if err != nil || took > time.Second {
		t.Errorf("query took %v (err %v); want the second upstream's answer within the attempt timeout", took, err)
	}
}

// TestH2EdgeMaxFrameSizeZero: SETTINGS_MAX_FRAME_SIZE below 16384 is
// the server's PROTOCOL_ERROR (RFC 9113 §6.5.2), which ends the
// connection at once; taken as given, a 0 would hold every request's
// body until its context ended.
func TestH2EdgeMaxFrameSizeZero(t *testing.T) {
	ca := dottest.NewCA(t)
	addr, acks := startRawH2(t, ca, func(fr *http2.Framer, _ func(bool, uint32, ...hpack.HeaderField) error, acks *atomic.Int64) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 0})
		serveLoop(fr, acks, nil, nil)
	})
	u := newUpstreamAt(t, ca, addr, Options{Transport: HTTPS, MaxConns: 1})
	// The first request may go out before the SETTINGS arrive; the
	// SETTINGS end that connection (PROTOCOL_ERROR), and every one after.
	u.Exchange(ctxFor(t, 300*time.Millisecond), query("a.test.", dns.TypeA))
	if n := acks.Load(); n != 0 {
		t.Errorf("%d SETTINGS ACKs: an invalid SETTINGS is refused, not acknowledged", n)
	}
	took, err := timed(func() error {
		_, err := u.Exchange(ctxFor(t, 2*time.Second), query("b.test.", dns.TypeA))
		return err
	})
	t.Logf("took %v, err %v", took, err)
	if took > time.Second || !errors.Is(err, ErrConnClosed) {
		t.Errorf("query took %v, err %v; want a prompt connection error", took, err)
	}
}

// TestH2EdgeResetWhileWaitingForWindow: a stream the server ends
// (RST_STREAM) while its DATA waits for window ends its query at once,
// not when its context does.
func TestH2EdgeResetWhileWaitingForWindow(t *testing.T) {
	ca := dottest.NewCA(t)
	addr, acks := startRawH2(t, ca, func(fr *http2.Framer, _ func(bool, uint32, ...hpack.HeaderField) error, acks *atomic.Int64) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		serveLoop(fr, acks, func(id uint32) { fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) }, nil)
	})
	u := newUpstreamAt(t, ca, addr, Options{Transport: HTTPS, MaxConns: 1})
	u.Exchange(ctxFor(t, 300*time.Millisecond), query("a.test.", dns.TypeA))
	waitFor(t, "SETTINGS ACK", func() bool { return acks.Load() >= 1 })
	took, err := timed(func() error {
		_, err := u.Exchange(ctxFor(t, 2*time.Second), query("b.test.", dns.TypeA))
		return err
	})
	t.Logf("took %v, err %v", took, err)
	if took > time.Second || !errors.Is(err, ErrStreamReset) {
		t.Errorf("query took %v, err %v; want the reset at once", took, err)
	}
}

// TestH2EdgeInterimEndStream: an interim (1xx) HEADERS with END_STREAM
// (malformed, RFC 9113 §8.1) fails its query at once.
func TestH2EdgeInterimEndStream(t *testing.T) {
	ca := dottest.NewCA(t)
	addr, _ := startRawH2(t, ca, func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, acks *atomic.Int64) {
		fr.WriteSettings()
		serveLoop(fr, acks, nil, func(f *http2.DataFrame) {
			if f.StreamEnded() {
				enc(true, f.StreamID, hpack.HeaderField{Name: ":status", Value: "103"})
			}
		})
	})
	u := newUpstreamAt(t, ca, addr, Options{Transport: HTTPS, MaxConns: 1})
	took, err := timed(func() error {
		_, err := u.Exchange(ctxFor(t, 2*time.Second), query("a.test.", dns.TypeA))
		return err
	})
	t.Logf("took %v, err %v", took, err)
	if took > time.Second {
		t.Errorf("query hung %v (err %v); want a prompt ErrBadAnswer", took, err)
	}
}

// TestH2EdgeGoAwayCold: the server's GOAWAY on a connection dialed for
// the query: the streams above its last stream ID were never processed,
// and the query is resent (errUnprocessed, despite resendOnce's fresh
// rule).
func TestH2EdgeGoAwayCold(t *testing.T) {
	ca := dottest.NewCA(t)
	var conns atomic.Int64
	addr, _ := startRawH2(t, ca, func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, acks *atomic.Int64) {
		n := conns.Add(1)
		fr.WriteSettings()
		serveLoop(fr, acks, func(id uint32) {
			if n == 1 {
				fr.WriteGoAway(0, http2.ErrCodeNo, nil)
			}
		}, func(f *http2.DataFrame) {
			if n == 1 || !f.StreamEnded() {
				return
			}
			q := new(dns.Msg)
			q.SetQuestion("a.test.", dns.TypeA)
			q.Id = 0
			r := dottest.AnswerMsg(q, netip.MustParseAddr("192.0.2.1"))
			wire, _ := r.Pack()
			enc(false, f.StreamID, hpack.HeaderField{Name: ":status", Value: "200"},
				hpack.HeaderField{Name: "content-type", Value: dohMediaType})
			fr.WriteData(f.StreamID, true, wire)
		})
	})
	u := newUpstreamAt(t, ca, addr, Options{Transport: HTTPS, MaxConns: 1})
	_, err := u.Exchange(ctxFor(t, 3*time.Second), query("a.test.", dns.TypeA))
	t.Logf("err %v, connections %d", err, conns.Load())
	if err != nil {
		t.Errorf("query above GOAWAY's last stream ID failed: %v; want it resent", err)
	}
}

// TestH2EdgeBadAnswerAfterGoAway: a bad answer (status 502) on a
// connection that has read a GOAWAY keeping that stream (ID <= last) is
// ErrBadAnswer, counted against the upstream, not the connection's loss.
func TestH2EdgeBadAnswerAfterGoAway(t *testing.T) {
	ca := dottest.NewCA(t)
	var streams atomic.Int64
	addr, _ := startRawH2(t, ca, func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, acks *atomic.Int64) {
		fr.WriteSettings()
		serveLoop(fr, acks, nil, func(f *http2.DataFrame) {
			if !f.StreamEnded() {
				return
			}
			streams.Add(1)
			fr.WriteGoAway(f.StreamID, http2.ErrCodeNo, nil)
			enc(true, f.StreamID, hpack.HeaderField{Name: ":status", Value: "502"})
		})
	})
	u := newUpstreamAt(t, ca, addr, Options{Transport: HTTPS, MaxConns: 1})
	_, err := u.Exchange(ctxFor(t, 3*time.Second), query("a.test.", dns.TypeA))
	t.Logf("err %v; requests %d", err, streams.Load())
	if !errors.Is(err, ErrBadAnswer) || errors.Is(err, ErrConnClosed) {
		t.Errorf("502 after GOAWAY: %v; want ErrBadAnswer alone", err)
	}
}

// TestH2EdgeStalled: a server that keeps its connection open and answers
// its PINGs but finishes no response (a wedged resolver behind a live
// frontend) has the connection ended as stalled once several queries
// were given up on it, as a DoT connection is: what still waits on it
// fails with ErrStalled, and the next query dials anew.
func TestH2EdgeStalled(t *testing.T) {
	ca := dottest.NewCA(t)
	var silent atomic.Bool
	silent.Store(true)
	srv := startH2Raw(t, ca, dottest.H2RawOptions{Handler: func(q *dns.Msg, reply func(*dns.Msg)) {
		if !silent.Load() {
			dottest.Answer("192.0.2.1")(q, reply)
		}
	}})
	u := newH2Upstream(t, ca, srv, Options{MaxConns: 1})

	waiting := make(chan error, 1)
	go func() {
		_, err := u.Exchange(ctxFor(t, 30*time.Second), query("waiting.example.", dns.TypeA))
		waiting <- err
	}()
	waitFor(t, "the waiting query to reach the server", func() bool { return srv.Requests() == 1 })

	// Short queries are abandoned one after another until the connection
	// is taken for stalled; the waiting query's 30 s bounds the loop.
	abandoned := 0
	var waitErr error
	for stalled := false; !stalled; abandoned++ {
		select {
		case waitErr = <-waiting:
			stalled = true
			continue
		default:
		}
		if abandoned > 300 {
			t.Fatal("the connection was never taken for stalled")
		}
		_, err := u.Exchange(ctxFor(t, 100*time.Millisecond), query(indexName(abandoned), dns.TypeA))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("abandoned query %d: got %v, want its deadline", abandoned, err)
		}
	}
	if abandoned-1 < unansweredLimit {
		t.Errorf("stalled after %d abandoned queries, want at least %d", abandoned-1, unansweredLimit)
	}
	if !errors.Is(waitErr, ErrStalled) {
		t.Errorf("waiting query: got %v, want ErrStalled", waitErr)
	}
	silent.Store(false)
	if _, err := u.Exchange(ctxFor(t, testTimeout), query("after.example.", dns.TypeA)); err != nil {
		t.Errorf("query after the stall: %v", err)
	}
	if n := srv.Accepts(); n != 2 {
		t.Errorf("%d connections, want 2: the stalled one and a new one", n)
	}
}

// TestH2EdgePaddedBody: an answer framed as one-octet DATA frames each
// padded to 256 octets uses more than the stream's receive window
// (padding counts against it, RFC 9113 §6.1): the window is given back
// as it is used, and the answer arrives whole.
func TestH2EdgePaddedBody(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startH2Raw(t, ca, dottest.H2RawOptions{
		Handler: func(q *dns.Msg, reply func(*dns.Msg)) {
			m := new(dns.Msg)
			m.SetReply(q)
			for i := range 60 {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(192, 0, 2, byte(i)),
				})
			}
			reply(m)
		},
		Behavior: dottest.H2RawBehavior{DataChunk: 1, Padding: 255},
	})
	u := newH2Upstream(t, ca, srv, Options{})
	r, err := u.Exchange(ctxFor(t, testTimeout), query("padded.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 60 {
		t.Errorf("%d answers, want 60", len(r.Answer))
	}
	wantNoViolations(t, srv)
}
