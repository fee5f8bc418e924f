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
	h2DefaultWindow     = 65535
	h2DefaultFrameSize  = 16384
	h2DefaultTableSize  = 4096
	h2MaxFrameSizeLimit = 1<<24 - 1
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
	done     chan struct{} // closed by abort
	once     sync.Once

	wmu  sync.Mutex // frames go out whole, header blocks in HPACK order
	bw   *bufio.Writer
	enc  *hpack.Encoder
	hbuf bytes.Buffer

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

// h2settings are the settings one side keeps to.
type h2settings struct {
	maxStreams uint32 // 0: no limit
	window     int64
	frameSize  uint32
	tableSize  uint32
	sentAt     time.Time
}

func defaultH2Settings() h2settings {
	return h2settings{window: h2DefaultWindow, frameSize: h2DefaultFrameSize, tableSize: h2DefaultTableSize}
}

// apply returns s changed by settings.
func (s h2settings) apply(settings []http2.Setting) h2settings {
	for _, st := range settings {
		switch st.ID {
		case http2.SettingMaxConcurrentStreams:
			s.maxStreams = st.Val
		case http2.SettingInitialWindowSize:
			s.window = int64(st.Val)
		case http2.SettingMaxFrameSize:
			s.frameSize = st.Val
		case http2.SettingHeaderTableSize:
			s.tableSize = st.Val
		}
	}
	return s
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
		srv: s, id: id, raw: raw, done: make(chan struct{}),
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

// peerSettings obeys the client's SETTINGS and ACKs them.
func (c *h2rawConn) peerSettings(f *http2.SettingsFrame) {
	var settings []http2.Setting
	_ = f.ForeachSetting(func(s http2.Setting) error {
		settings = append(settings, s)
		return nil
	})
	c.wmu.Lock()
	c.mu.Lock()
	old := c.peer
	c.peer = c.peer.apply(settings)
	for _, st := range c.streams {
		st.sendWin += c.peer.window - old.window
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	if c.peer.tableSize != old.tableSize {
		c.enc.SetMaxDynamicTableSizeLimit(c.peer.tableSize)
	}
	c.wmu.Unlock()
	c.write(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
}

// sendSettings sends settings now, or once the SETTINGS in flight is
// ACKed: one at a time keeps what the client may do clear. Until the
// ACK, the client may keep to the old values or the new, whichever
// allow more.
func (c *h2rawConn) sendSettings(settings []http2.Setting) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.inflight != nil {
		c.queued = append(c.queued, settings)
		c.mu.Unlock()
		return
	}
	next := c.cur.apply(settings)
	next.sentAt = time.Now()
	c.inflight = &next
	if grow := next.window - c.cur.window; grow > 0 {
		for _, st := range c.streams {
			st.recvWin += grow
		}
	}
	c.mu.Unlock()
	c.writeLocked(func(fr *http2.Framer) error { return fr.WriteSettings(settings...) })
}

// settingsAcked makes the SETTINGS in flight the client's rules, and
// sends the next one queued.
func (c *h2rawConn) settingsAcked() {
	c.mu.Lock()
	if c.inflight == nil {
		c.mu.Unlock()
		c.violation("SETTINGS ACK for no SETTINGS")
		return
	}
	next := *c.inflight
	if shrink := next.window - c.cur.window; shrink < 0 {
		for _, st := range c.streams {
			st.recvWin += shrink
		}
	}
	if next.tableSize < c.cur.tableSize {
		// The client's next header block must start by shrinking its
		// table; one that goes on using it fails to decode.
		c.dec.SetMaxDynamicTableSize(next.tableSize)
	}
	c.dec.SetAllowedMaxDynamicTableSize(next.tableSize)
	c.cur, c.inflight = next, nil
	var queued []http2.Setting
	if len(c.queued) > 0 {
		queued = c.queued[0]
		c.queued = c.queued[1:]
	}
	c.mu.Unlock()
	c.srv.settingsAcks.Add(1)
	if queued != nil {
		c.sendSettings(queued)
	}
}

// laxFrameSizeLocked is the largest frame the client may send now.
func (c *h2rawConn) laxFrameSizeLocked() uint32 {
	if c.inflight != nil {
		return max(c.cur.frameSize, c.inflight.frameSize)
	}
	return c.cur.frameSize
}

func (c *h2rawConn) laxFrameSize() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.laxFrameSizeLocked()
}

// laxMaxStreamsLocked is how many streams the client may have open now
// (0: no limit).
func (c *h2rawConn) laxMaxStreamsLocked() uint32 {
	limit := c.cur.maxStreams
	if c.inflight != nil && (limit == 0 || c.inflight.maxStreams == 0) {
		return 0
	}
	if c.inflight != nil {
		limit = max(limit, c.inflight.maxStreams)
	}
	return limit
}

// laxWindowLocked is the window a new stream starts with.
func (c *h2rawConn) laxWindowLocked() int64 {
	if c.inflight != nil {
		return max(c.cur.window, c.inflight.window)
	}
	return c.cur.window
}

// ping sends a PING of the server's own; goAway marks the one after a
// GOAWAY.
func (c *h2rawConn) ping(goAway bool) {
	c.mu.Lock()
	c.pingSeq++
	data := [8]byte{'d', 'o', 't', 'p', 0, 0, byte(c.pingSeq >> 8), byte(c.pingSeq)}
	if goAway {
		data = goAwayPing
	}
	c.mu.Unlock()
	c.write(func(fr *http2.Framer) error {
		c.mu.Lock()
		c.pings[data] = time.Now()
		c.mu.Unlock()
		return fr.WritePing(false, data)
	})
}

func (c *h2rawConn) pingAcked(data [8]byte) {
	c.mu.Lock()
	_, ok := c.pings[data]
	delete(c.pings, data)
	if data == goAwayPing {
		c.goSeen = true
	}
	c.mu.Unlock()
	if !ok {
		c.violation("PING ACK %q for no PING", data[:])
		return
	}
	c.srv.pingAcks.Add(1)
}

// checkAcks records the SETTINGS and PINGs the client has left unACKed
// for ackWait, once each.
func (c *h2rawConn) checkAcks(now time.Time) {
	if c.silent.Load() {
		return
	}
	c.mu.Lock()
	var late []string
	if c.inflight != nil && !c.inflight.sentAt.IsZero() && now.Sub(c.inflight.sentAt) > ackWait {
		late = append(late, "SETTINGS")
		c.inflight.sentAt = time.Time{}
	}
	for data, at := range c.pings {
		if now.Sub(at) > ackWait {
			late = append(late, "PING")
			delete(c.pings, data)
		}
	}
	c.mu.Unlock()
	for _, what := range late {
		c.violation("%s not ACKed within %v", what, ackWait)
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
