package dottest

import (
	"bytes"
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawClient is an HTTP/2 client written frame by frame, that breaks the
// rules a test tells it to.
type rawClient struct {
	t    *testing.T
	tc   *tls.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
}

func dialRaw(t *testing.T, ca *CA, srv *H2RawServer) *rawClient {
	t.Helper()
	tc, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: "dns.test",
		NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	c := &rawClient{t: t, tc: tc, fr: http2.NewFramer(tc, tc)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	return c
}

// start sends the preface and an empty SETTINGS, and ACKs the server's.
func (c *rawClient) start() {
	c.t.Helper()
	c.write([]byte(http2.ClientPreface))
	c.check(c.fr.WriteSettings())
	c.until(func(f http2.Frame) bool {
		sf, ok := f.(*http2.SettingsFrame)
		return ok && !sf.IsAck()
	})
	c.check(c.fr.WriteSettingsAck())
}

// until reads frames until one meets done, within a few seconds.
func (c *rawClient) until(done func(http2.Frame) bool) http2.Frame {
	c.t.Helper()
	c.tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("reading a frame: %v", err)
		}
		if done(f) {
			return f
		}
	}
}

// request sends HEADERS with fields, and body in one DATA frame.
func (c *rawClient) request(id uint32, fields []hpack.HeaderField, body []byte) {
	c.t.Helper()
	c.hbuf.Reset()
	for _, f := range fields {
		c.check(c.enc.WriteField(f))
	}
	c.check(c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(),
		EndHeaders: true, EndStream: body == nil}))
	if body != nil {
		c.check(c.fr.WriteData(id, true, body))
	}
}

func (c *rawClient) write(p []byte) {
	c.t.Helper()
	_, err := c.tc.Write(p)
	c.check(err)
}

func (c *rawClient) check(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

// dohFields are a DoH request's header fields, with more.
func dohFields(body []byte, more ...hpack.HeaderField) []hpack.HeaderField {
	return append([]hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "dns.test"}, {Name: ":path", Value: DoHPath},
		{Name: "content-type", Value: dohMediaType}, {Name: "accept", Value: dohMediaType},
		{Name: "content-length", Value: strconv.Itoa(len(body))}}, more...)
}

// queryWire is a query for www.example. with id, in wire form.
func queryWire(t *testing.T, id uint16) []byte {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion("www.example.", dns.TypeA)
	q.Id = id
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

// waitViolation waits for a violation containing want.
func waitViolation(t *testing.T, srv *H2RawServer, want string) {
	t.Helper()
	deadline := time.Now().Add(ackWait + 3*time.Second)
	for {
		vs := srv.Violations()
		for _, v := range vs {
			if strings.Contains(v, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no violation %q among %q", want, vs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestH2RawViolations: each rule a client can break is recorded, and a
// client that keeps them all is answered with none recorded.
func TestH2RawViolations(t *testing.T) {
	setting := func(id http2.SettingID, v uint32) []http2.Setting { return []http2.Setting{{ID: id, Val: v}} }
	tests := []struct {
		name     string
		settings []http2.Setting
		behavior H2RawBehavior
		handler  Handler
		play     func(t *testing.T, c *rawClient, srv *H2RawServer)
		want     string // "" : none, and an answer
	}{
		{name: "good", play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.start()
			c.request(1, dohFields(queryWire(t, 0)), queryWire(t, 0))
			c.until(func(f http2.Frame) bool { d, ok := f.(*http2.DataFrame); return ok && d.StreamEnded() })
		}},
		{name: "bad preface", want: "connection preface", play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.write([]byte("GET / HTTP/1.1\r\nHost: dns.test\r\n\r\n"))
		}},
		{name: "PING first", want: "want SETTINGS", play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.write([]byte(http2.ClientPreface))
			c.check(c.fr.WritePing(false, [8]byte{}))
		}},
		{name: "even stream", want: "even stream ID", play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.start()
			c.request(2, dohFields(queryWire(t, 0)), queryWire(t, 0))
		}},
		{name: "stream ID going down", want: "not a new one", play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.start()
			c.request(5, dohFields(queryWire(t, 0)), queryWire(t, 0))
			c.request(3, dohFields(queryWire(t, 0)), queryWire(t, 0))
		}},
		{name: "user-agent", want: "header field user-agent sent", play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.start()
			c.request(1, dohFields(queryWire(t, 0), hpack.HeaderField{Name: "user-agent", Value: "x"}), queryWire(t, 0))
		}},
		{name: "cookie", want: "header field cookie sent", play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.start()
			c.request(1, dohFields(queryWire(t, 0), hpack.HeaderField{Name: "cookie", Value: "a=b"}), queryWire(t, 0))
		}},
		{name: "GET", want: `:method: "GET"`, play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.start()
			fields := dohFields(nil)
			fields[0].Value = "GET"
			c.request(1, fields[:6], nil)
		}},
		{name: "DNS ID", want: "DNS ID 4660", play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.start()
			c.request(1, dohFields(queryWire(t, 0x1234)), queryWire(t, 0x1234))
		}},
		{name: "DATA beyond the stream window", settings: setting(http2.SettingInitialWindowSize, 10), want: "window 10",
			play: func(t *testing.T, c *rawClient, srv *H2RawServer) {
				c.start()
				waitAck(t, srv)
				c.request(1, dohFields(queryWire(t, 0)), queryWire(t, 0))
			}},
		{name: "DATA beyond the connection window", settings: setting(http2.SettingInitialWindowSize, 1<<20),
			want: "connection window", play: func(t *testing.T, c *rawClient, srv *H2RawServer) {
				c.start()
				waitAck(t, srv)
				srv.WithholdWindow(true)
				c.hbuf.Reset()
				for _, f := range dohFields(make([]byte, 80000)) {
					c.check(c.enc.WriteField(f))
				}
				c.check(c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}))
				for range 5 {
					c.check(c.fr.WriteData(1, false, make([]byte, 16000)))
				}
			}},
		{name: "frame too large", want: "larger than MAX_FRAME_SIZE", play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
			c.start()
			c.hbuf.Reset()
			for _, f := range dohFields(make([]byte, 20000)) {
				c.check(c.enc.WriteField(f))
			}
			c.check(c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}))
			_ = c.fr.WriteData(1, true, make([]byte, 20000)) // the server may close before it is all written
		}},
		{name: "too many streams", settings: setting(http2.SettingMaxConcurrentStreams, 1), handler: Silent(),
			want: "MAX_CONCURRENT_STREAMS 1", play: func(t *testing.T, c *rawClient, srv *H2RawServer) {
				c.start()
				waitAck(t, srv)
				c.request(1, dohFields(queryWire(t, 0)), queryWire(t, 0))
				c.request(3, dohFields(queryWire(t, 0)), queryWire(t, 0))
			}},
		{name: "HPACK table kept after HEADER_TABLE_SIZE 0", settings: setting(http2.SettingHeaderTableSize, 0),
			want: "COMPRESSION_ERROR", play: func(t *testing.T, c *rawClient, srv *H2RawServer) {
				c.start() // ACKed, but the encoder keeps its table
				c.request(1, dohFields(queryWire(t, 0), hpack.HeaderField{Name: "accept-language", Value: "x"}), queryWire(t, 0))
				c.request(3, dohFields(queryWire(t, 0), hpack.HeaderField{Name: "accept-language", Value: "x"}), queryWire(t, 0))
			}},
		{name: "stream after GOAWAY", behavior: H2RawBehavior{GoAwayAfter: 1}, want: "opened after GOAWAY",
			play: func(t *testing.T, c *rawClient, _ *H2RawServer) {
				c.start()
				c.request(1, dohFields(queryWire(t, 0)), queryWire(t, 0))
				c.request(3, dohFields(queryWire(t, 0)), queryWire(t, 0)) // above: GOAWAY
				p := c.until(func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok }).(*http2.PingFrame)
				c.check(c.fr.WritePing(true, p.Data))
				c.request(5, dohFields(queryWire(t, 0)), queryWire(t, 0))
			}},
		{name: "SETTINGS and PING never ACKed", want: "not ACKed", play: func(t *testing.T, c *rawClient, srv *H2RawServer) {
			c.write([]byte(http2.ClientPreface))
			c.check(c.fr.WriteSettings())
			srv.Ping()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := NewCA(t)
			srv := StartH2Raw(t, H2RawOptions{Cert: ca.Leaf(t, "dns.test"), Handler: tt.handler,
				Settings: tt.settings, Behavior: tt.behavior})
			c := dialRaw(t, ca, srv)
			tt.play(t, c, srv)
			if tt.want == "" {
				if vs := srv.Violations(); len(vs) > 0 || srv.Answered() != 1 {
					t.Errorf("violations %q, %d answered; want none and 1", vs, srv.Answered())
				}
				return
			}
			waitViolation(t, srv, tt.want)
		})
	}
}

// waitAck waits for the client's ACK of the server's SETTINGS.
func waitAck(t *testing.T, srv *H2RawServer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.SettingsAcks() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no SETTINGS ACK")
		}
		time.Sleep(time.Millisecond)
	}
}
