package upstream

// The DoH HTTP/2 client's checks of what the server sends beyond the
// DNS answer: a content-length that disagrees with the body (RFC 9113
// §8.1.1), frames on streams the client never opened (§5.1), a HEADERS
// frame whose padding leaves HPACK out of step (§4.3). Each case is
// played by a scripted server, which records what the client tells it:
// GOAWAY for a connection error, RST_STREAM for a stream error.

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// answerFunc answers the request on stream id, whose answer packs to
// body, as a case's server does.
type answerFunc func(fr *http2.Framer, enc func(end bool, id uint32, fields ...hpack.HeaderField) error, id uint32, body []byte)

// told is what the client sent the scripted server: its GOAWAY and
// RST_STREAM codes.
type told struct {
	mu      sync.Mutex
	goAways []http2.ErrCode
	resets  []http2.ErrCode
}

func (t *told) codes() (goAways, resets []http2.ErrCode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]http2.ErrCode(nil), t.goAways...), append([]http2.ErrCode(nil), t.resets...)
}

// startScripted starts a server that answers each request with answer
// and records what the client tells it.
func startScripted(t *testing.T, ca *dottest.CA, answer answerFunc) (*Upstream, *told) {
	t.Helper()
	rec := new(told)
	addr, _ := startRawH2(t, ca, func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, acks *atomic.Int64) {
		fr.WriteSettings()
		bodies := map[uint32][]byte{}
		serveFrames(fr, acks, frameHooks{
			goAway: func(f *http2.GoAwayFrame) {
				rec.mu.Lock()
				rec.goAways = append(rec.goAways, f.ErrCode)
				rec.mu.Unlock()
			},
			reset: func(f *http2.RSTStreamFrame) {
				rec.mu.Lock()
				rec.resets = append(rec.resets, f.ErrCode)
				rec.mu.Unlock()
			},
			data: func(f *http2.DataFrame) {
				bodies[f.StreamID] = append(bodies[f.StreamID], f.Data()...)
				if !f.StreamEnded() {
					return
				}
				q := new(dns.Msg)
				if err := q.Unpack(bodies[f.StreamID]); err != nil {
					return
				}
				delete(bodies, f.StreamID)
				r := new(dns.Msg)
				r.SetReply(q)
				r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}}
				body, err := r.Pack()
				if err != nil {
					return
				}
				answer(fr, enc, f.StreamID, body)
			},
		})
	})
	return newUpstreamAt(t, ca, addr, Options{Transport: HTTPS, MaxConns: 1}), rec
}

var (
	status200 = hpack.HeaderField{Name: ":status", Value: "200"}
	dnsType   = hpack.HeaderField{Name: "content-type", Value: dohMediaType}
)

func contentLength(n int) hpack.HeaderField {
	return hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(n)}
}

func TestH2Strict(t *testing.T) {
	const none = http2.ErrCode(1 << 31) // the client told the server nothing
	tests := []struct {
		name string
		// answer plays the server's response.
		answer answerFunc
		// wantErr: nil for an answer.
		wantErr error
		// The code of the client's GOAWAY and RST_STREAM, or none.
		wantGoAway, wantReset http2.ErrCode
	}{{
		name: "content-length as long as the body",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			enc(false, id, status200, dnsType, contentLength(len(body)))
			fr.WriteData(id, true, body)
		},
		wantGoAway: none, wantReset: none,
	}, {
		name: "content-length longer than the body",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			enc(false, id, status200, dnsType, contentLength(len(body)+5))
			fr.WriteData(id, true, body)
		},
		// The server ended the stream: a failed query, nothing to reset.
		wantErr: ErrBadAnswer, wantGoAway: none, wantReset: none,
	}, {
		name: "content-length shorter than the body, the stream still open",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			enc(false, id, status200, dnsType, contentLength(len(body)-5))
			fr.WriteData(id, false, body)
			fr.WriteData(id, true, nil)
		},
		wantErr: ErrBadAnswer, wantGoAway: none, wantReset: http2.ErrCodeProtocol,
	}, {
		name: "content-length and no body",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			enc(true, id, status200, dnsType, contentLength(len(body)))
		},
		wantErr: ErrBadAnswer, wantGoAway: none, wantReset: none,
	}, {
		name: "two content-lengths that differ",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			enc(false, id, status200, dnsType, contentLength(len(body)), contentLength(len(body)+1))
			fr.WriteData(id, true, body)
		},
		wantErr: ErrBadAnswer, wantGoAway: none, wantReset: http2.ErrCodeProtocol,
	}, {
		name: "trailers",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			enc(false, id, status200, dnsType)
			fr.WriteData(id, false, body)
			enc(true, id, hpack.HeaderField{Name: "x-trailer", Value: "1"})
		},
		wantGoAway: none, wantReset: none,
	}, {
		name: "trailers that do not end the stream",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			enc(false, id, status200, dnsType)
			fr.WriteData(id, false, body)
			enc(false, id, hpack.HeaderField{Name: "x-trailer", Value: "1"})
		},
		wantErr: ErrBadAnswer, wantGoAway: none, wantReset: http2.ErrCodeProtocol,
	}, {
		name: "trailers with a pseudo-header",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			enc(false, id, status200, dnsType)
			fr.WriteData(id, false, body)
			enc(true, id, status200)
		},
		wantErr: ErrBadAnswer, wantGoAway: none, wantReset: none,
	}, {
		name: "HEADERS on a stream the server would have opened",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			enc(false, id+1, status200, dnsType)
		},
		wantErr: ErrConnClosed, wantGoAway: http2.ErrCodeProtocol, wantReset: none,
	}, {
		name: "DATA on a stream the client has not opened yet",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			fr.WriteData(id+2, true, body)
		},
		wantErr: ErrConnClosed, wantGoAway: http2.ErrCodeProtocol, wantReset: none,
	}, {
		name: "HEADERS padded beyond the frame",
		answer: func(fr *http2.Framer, enc func(bool, uint32, ...hpack.HeaderField) error, id uint32, body []byte) {
			// Pad length 200 in a frame of 3 octets: the header block
			// is refused before it is decoded.
			fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersPadded|http2.FlagHeadersEndHeaders, id, []byte{200, 0x88, 0})
		},
		wantErr: ErrConnClosed, wantGoAway: http2.ErrCodeCompression, wantReset: none,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			u, rec := startScripted(t, ca, tt.answer)
			took, err := timed(func() error {
				r, err := u.Exchange(ctxFor(t, 2*time.Second), query("strict.example.", dns.TypeA))
				if err == nil && len(r.Answer) != 1 {
					t.Errorf("answer %v, want the one A record", r)
				}
				return err
			})
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err %v, want an answer", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			case took > time.Second:
				t.Errorf("took %v: the query waited for its deadline", took)
			}
			check := func(what string, got []http2.ErrCode, want http2.ErrCode) {
				t.Helper()
				if want == none {
					if len(got) != 0 {
						t.Errorf("%s %v, want none", what, got)
					}
					return
				}
				if len(got) == 0 || got[0] != want {
					t.Errorf("%s %v, want %v", what, got, want)
				}
			}
			// What the client sends reaches the server after the
			// query's end; wait for the first of what is expected.
			t.Logf("took %v, err %v", took, err)
			waitFor(t, "what the client tells the server", func() bool {
				g, r := rec.codes()
				return (tt.wantGoAway == none || len(g) > 0) && (tt.wantReset == none || len(r) > 0)
			})
			goAways, resets := rec.codes()
			t.Logf("GOAWAY %v, RST_STREAM %v", goAways, resets)
			check("GOAWAY", goAways, tt.wantGoAway)
			check("RST_STREAM", resets, tt.wantReset)
		})
	}
}
