package dottest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2's initial values (RFC 9113 §6.5.2), before any SETTINGS.
const (
	h2DefaultWindow    = 65535
	h2DefaultFrameSize = 16384
	h2DefaultTableSize = 4096
)

// goAwayPing is the data of the PING sent right after a GOAWAY: its ACK
// proves the client has read the GOAWAY, so that a stream it opens after
// is a breach, not a race.
var goAwayPing = [8]byte{'g', 'o', 'a', 'w', 'a', 'y', '!', '!'}

// h2rawConn is one connection of an H2RawServer. Lock order: wmu, then
// mu.
type h2rawConn struct {
	srv      *H2RawServer
	id       int // accept order
	raw      net.Conn
	tc       *tls.Conn
	fr       *http2.Framer
	dec      *hpack.Decoder // the reader's only
	requests atomic.Int64
	silent   atomic.Bool
	ready    chan struct{} // closed once the framer is set up
	done     chan struct{} // closed by abort
	once     sync.Once

	wmu     sync.Mutex // frames go out whole, header blocks in HPACK order
	closing bool       // closed for writing (closeGracefully); guarded by wmu
	bw      *bufio.Writer
	enc     *hpack.Encoder
	hbuf    bytes.Buffer

	mu       sync.Mutex
	cond     *sync.Cond // windows grew, a stream ended, the connection closed
	streams  map[uint32]*h2rawStream
	lastID   uint32 // the highest stream the client opened
	opened   int    // streams opened on this connection
	open     int    // streams counting toward MAX_CONCURRENT_STREAMS
	goAway   bool
	goLast   uint32 // GOAWAY's last stream
	goSeen   bool   // the client ACKed the PING after GOAWAY
	goClose  bool
	cur      h2settings  // the server's settings as ACKed
	inflight *h2settings // sent, not ACKed yet
	queued   [][]http2.Setting
	recvWin  int64 // connection window the client may still use
	owed     int64 // connection window withheld
	pings    map[[8]byte]time.Time
	pingSeq  uint64
	peer     h2settings // the client's settings, which the server obeys
	sendWin  int64      // connection window the server may still use
	held     []func()   // answers held for Reverse
}

// h2rawStream is one stream, as the server sees it. Guarded by the
// connection's mu.
type h2rawStream struct {
	id      uint32
	fields  []hpack.HeaderField
	body    []byte
	recvWin int64 // stream window the client may still use
	owed    int64 // stream window withheld
	sendWin int64 // stream window the server may still use
	ended   bool  // the client's END_STREAM came
	closed  bool  // ended both ways, or reset
	ignored bool  // above GOAWAY's last stream: never answered
	seq     int   // the order its request was read in
}

func newH2RawConn(s *H2RawServer, id int, raw net.Conn) *h2rawConn {
	c := &h2rawConn{
		srv: s, id: id, raw: raw, ready: make(chan struct{}), done: make(chan struct{}),
		streams: map[uint32]*h2rawStream{},
		cur:     defaultH2Settings(), peer: defaultH2Settings(),
		recvWin: h2DefaultWindow, sendWin: h2DefaultWindow,
		pings: map[[8]byte]time.Time{},
	}
	c.cond = sync.NewCond(&c.mu)
	c.enc = hpack.NewEncoder(&c.hbuf)
	return c
}

// serve runs the connection: TLS, the server's SETTINGS, the client's
// preface, then every frame the client sends, until it ends.
func (c *h2rawConn) serve() {
	defer c.finish()
	c.tc = tls.Server(c.raw, c.srv.tlsConf)
	if err := c.tc.Handshake(); err != nil {
		return
	}
	c.bw = bufio.NewWriter(c.tc)
	c.fr = http2.NewFramer(c.bw, c.tc)
	c.dec = hpack.NewDecoder(h2DefaultTableSize, nil)
	c.fr.ReadMetaHeaders = c.dec
	c.sendSettings(c.srv.opts.Settings)
	close(c.ready)

	preface := make([]byte, len(http2.ClientPreface))
	if n, err := io.ReadFull(c.tc, preface); err != nil {
		if n > 0 {
			c.violation("connection preface cut short: %q", preface[:n])
		}
		return
	}
	if string(preface) != http2.ClientPreface {
		c.violation("connection preface %q", preface)
		return
	}
	for first := true; ; first = false {
		c.mu.Lock()
		c.fr.SetMaxReadFrameSize(c.laxFrameSizeLocked())
		c.mu.Unlock()
		f, err := c.fr.ReadFrame()
		if err != nil {
			if !c.readError(err) {
				return
			}
			continue
		}
		if sf, ok := f.(*http2.SettingsFrame); first && (!ok || sf.IsAck()) {
			c.violation("first frame %v, want SETTINGS", f.Header())
		}
		c.handle(f)
	}
}

// readError records what a failed read says of the client and reports
// whether the connection goes on (a stream error).
func (c *h2rawConn) readError(err error) bool {
	var se http2.StreamError
	switch {
	case errors.As(err, &se):
		c.violation("stream %d: %v", se.StreamID, se)
		c.resetStream(se.StreamID, http2.ErrCodeProtocol)
		return true
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.violation("frame larger than MAX_FRAME_SIZE %d", c.laxFrameSize())
	case c.isClosed() || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
	default:
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			c.violation("%v", err)
			c.write(func(fr *http2.Framer) error { return fr.WriteGoAway(c.lastSeen(), http2.ErrCode(ce), nil) })
		}
	}
	return false
}

// handle acts on one frame from the client.
func (c *h2rawConn) handle(f http2.Frame) {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			c.settingsAcked()
		} else {
			c.peerSettings(f)
		}
	case *http2.PingFrame:
		if f.IsAck() {
			c.pingAcked(f.Data)
		} else {
			c.write(func(fr *http2.Framer) error { return fr.WritePing(true, f.Data) })
		}
	case *http2.MetaHeadersFrame:
		c.headers(f)
	case *http2.DataFrame:
		c.data(f)
	case *http2.WindowUpdateFrame:
		c.mu.Lock()
		if f.StreamID == 0 {
			c.sendWin += int64(f.Increment)
		} else if st := c.streams[f.StreamID]; st != nil {
			st.sendWin += int64(f.Increment)
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	case *http2.RSTStreamFrame:
		c.mu.Lock()
		if st := c.streams[f.StreamID]; st != nil {
			c.closeStreamLocked(st)
		}
		c.mu.Unlock()
	case *http2.PushPromiseFrame:
		c.violation("PUSH_PROMISE from a client")
	}
}

func (c *h2rawConn) violation(format string, args ...any) {
	c.srv.violation(c.id, format, args...)
}

func (c *h2rawConn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// abort closes the TCP connection at once, without a TLS close_notify,
// and wakes everything waiting on it.
func (c *h2rawConn) abort() {
	c.once.Do(func() {
		close(c.done)
		c.raw.Close()
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
}

// finish ends the connection once its reader returns.
func (c *h2rawConn) finish() {
	c.checkAcks(time.Now())
	c.abort()
	c.srv.closed.Add(1)
}
