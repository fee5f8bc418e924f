package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// alpnH2 is the ALPN protocol ID of HTTP/2 over TLS (RFC 9113 §3.2).
const alpnH2 = "h2"

// What an HTTP/2 connection asks of the server in its SETTINGS, and the
// receive windows it grants (RFC 9113 §6.5.2, §6.9).
const (
	// h2StreamWindow is each stream's receive window: more than the
	// largest DNS message, so that no answer ever waits for a stream
	// WINDOW_UPDATE (a longer body is refused anyway).
	h2StreamWindow = 1 << 17
	// h2ConnWindow is the connection's receive window, given back in
	// one WINDOW_UPDATE each time half of it has been used.
	h2ConnWindow = 1 << 24
	// h2MaxHeaderList bounds a response's header fields: a DoH answer
	// has a handful.
	h2MaxHeaderList = 16 << 10
	// h2DefaultMaxStreams is the server's stream limit until its
	// SETTINGS say (RFC 9113 §6.5.2 leaves it unlimited; net/http and
	// most servers take 100).
	h2DefaultMaxStreams = 100
	// h2MaxStreamID is the last client stream ID (2^31-1, odd).
	h2MaxStreamID = 1<<31 - 1
	// maxWindow is the largest a flow-control window may be (RFC 9113
	// §6.9.1).
	maxWindow = 1<<31 - 1
)

// h2Conn is one HTTP/2 connection to a DoH server (RFC 8484 over RFC
// 9113): each query a POST on a stream of its own, many at once. It is
// built on x/net's HTTP/2 framer and HPACK codec, as DoT's conn is built
// on TLS: a request's frames are queued for one writer, which sends
// whatever is queued as one TLS record, and one reader hands each answer
// to the query waiting for it. net/http's client adds a goroutine and
// channels of its own to every request.
type h2Conn struct {
	tc        *tls.Conn
	bc        *batchConn // writes go out through its writer
	authority string     // :authority, host[:port]
	path      string     // :path
	// stallAfter: see giveUp.
	stallAfter func() time.Duration

	// wmu serialises everything written: a request's HEADERS and DATA
	// are written together, so that stream IDs go out in increasing
	// order and HPACK's state is the encoder's (RFC 9113 §5.1.1).
	wmu  sync.Mutex
	wfr  *http2.Framer // writes to bc
	enc  *hpack.Encoder
	hbuf bytes.Buffer // the last header block encoded
	// hlen is the body length hbuf's block says; hreuse, that the block
	// may be sent again as it is (headerBlock).
	hlen   int
	hreuse bool

	rfr *http2.Framer // the reader's, reads tc through a bufio.Reader

	mu      sync.Mutex
	streams map[uint32]*h2Stream
	// nextID is the next stream ID to take: written under mu, read by
	// the reader without it (checkIdle).
	nextID     atomic.Uint32
	maxStreams uint32 // the server's MAX_CONCURRENT_STREAMS
	maxFrame   uint32 // the server's MAX_FRAME_SIZE: our DATA frames' bound
	initWindow int32  // the server's INITIAL_WINDOW_SIZE: a new stream's send window
	sendWindow int32  // the connection's send window
	recvUsed   int32  // connection window used and not given back yet
	goAway     bool   // the server sent GOAWAY: no new streams
	// quietSince is when the connection last finished a response or,
	// idle, was asked something; unanswered counts the queries given up
	// on since (see giveUp).
	quietSince time.Time
	unanswered int
	err        error // why the connection ended; nil while it is open
	changed    chan struct{}

	lastRead atomic.Int64 // UnixNano of the last frame read, for pings
	pingSent atomic.Int64 // UnixNano of the unanswered PING, 0 when none
	pinger   *time.Timer
	done     chan struct{} // closed when the connection has ended
}

// h2Stream is one query's stream.
type h2Stream struct {
	id         uint32
	sendWindow int32 // what the server lets this stream send
	recvUsed   int32 // stream window used and not given back yet
	status     int   // the response's :status, 0 until its HEADERS
	ctype      string
	length     int64 // the response's content-length, -1 without one
	got        int64 // octets of body received, kept or not
	body       []byte
	q          dns.Question // what the answer must match
	ch         chan result  // buffered 1: the reader never waits
}

// newH2Dialer returns the dialer of HTTP/2 connections to u's host and
// path: TLS with a clone of tlsConf offering only h2 (our verification,
// pins and clock apply), then HTTP/2 on it. There is no fallback: a
// server that does not agree to h2 is not asked anything.
func newH2Dialer(tlsConf *tls.Config, authority, path string, stallAfter func() time.Duration) dialFunc {
	conf := tlsConf.Clone()
	conf.NextProtos = []string{alpnH2}
	return func(ctx context.Context, addr netip.AddrPort) (httpConn, error) {
		tc, err := dialTLS(ctx, addr.String(), conf)
		if err != nil {
			return nil, &dialError{err}
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != alpnH2 {
			tc.Close()
			return nil, &dialError{fmt.Errorf("the server does not speak HTTP/2 (ALPN %q)", p)}
		}
		c, err := startH2(tc, authority, path, stallAfter)
		if err != nil {
			tc.Close()
			return nil, &dialError{err}
		}
		return c, nil
	}
}

// startH2 speaks first on tc (the preface, SETTINGS, the connection's
// window) and starts the reader. The server's SETTINGS need not have
// come: requests go out meanwhile within the protocol's defaults.
func startH2(tc *tls.Conn, authority, path string, stallAfter func() time.Duration) (*h2Conn, error) {
	c := &h2Conn{
		tc:         tc,
		stallAfter: stallAfter,
		quietSince: time.Now(),
		bc:         newBatchConn(tc),
		authority:  authority,
		path:       path,
		streams:    make(map[uint32]*h2Stream),
		maxStreams: h2DefaultMaxStreams,
		maxFrame:   16 << 10, // RFC 9113 §6.5.2's initial value
		initWindow: 65535,
		sendWindow: 65535,
		done:       make(chan struct{}),
	}
	c.nextID.Store(1) // a client's streams are odd (RFC 9113 §5.1.1)
	c.wfr = http2.NewFramer(c.bc, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	// The reader's frames come through a buffer, as net/http's: a
	// frame's header and payload, and the frames after it in the same
	// TLS record, take one tls.Conn.Read instead of two a frame.
	c.rfr = http2.NewFramer(nil, bufio.NewReader(tc))
	c.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.rfr.MaxHeaderListSize = h2MaxHeaderList
	c.rfr.SetMaxReadFrameSize(16 << 10) // what we leave at its default
	c.rfr.SetReuseFrames()

	if _, err := c.bc.Write([]byte(http2.ClientPreface)); err != nil {
		return nil, fmt.Errorf("HTTP/2 preface: %w", err)
	}
	err := c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
	)
	if err == nil {
		err = c.wfr.WriteWindowUpdate(0, h2ConnWindow-65535)
	}
	if err != nil {
		return nil, fmt.Errorf("HTTP/2 settings: %w", err)
	}
	c.lastRead.Store(time.Now().UnixNano())
	c.pinger = time.AfterFunc(pingAfter, c.checkAlive)
	go c.readLoop()
	return c, nil
}

// alive implements httpConn: open, and taking new streams.
func (c *h2Conn) alive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil && !c.goAway && c.nextID.Load() <= h2MaxStreamID
}

// lost implements httpConn: every error that is the connection's, not
// the stream's, says ErrConnClosed.
func (c *h2Conn) lost(err error) bool { return errors.Is(err, ErrConnClosed) || netLost(err) }

// available implements httpConn: under the server's stream limit.
func (c *h2Conn) available() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return uint32(len(c.streams)) < c.maxStreams
}

// Close implements httpConn: GOAWAY, then the TLS close_notify, then the
// socket, each bounded; requests still on it fail.
func (c *h2Conn) Close() error {
	c.wmu.Lock()
	c.wfr.WriteGoAway(0, http2.ErrCodeNo, nil)
	c.wmu.Unlock()
	c.end(errH2Closed)
	<-c.done
	return nil
}

// errH2Closed ends a connection we closed: in good order.
var errH2Closed = fmt.Errorf("%w: closed", ErrConnClosed)
