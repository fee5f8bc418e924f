package dottest

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// errStreamGone stops a write to a stream that ended (the client reset
// it) without harm to the connection.
var errStreamGone = errors.New("stream ended")

// answer reads the request on st and answers it as the behavior says.
func (c *h2rawConn) answer(st *h2rawStream) {
	b := c.srv.behavior.Load()
	status, q := parseRequest(st.fields, st.body)
	fault := FaultNone
	var body []byte
	if q != nil {
		fault = c.srv.fault(b, strings.ToLower(q.Question[0].Name))
		if fault == FaultRefuse || fault == FaultReset {
			code := map[H2Fault]http2.ErrCode{FaultRefuse: http2.ErrCodeRefusedStream, FaultReset: http2.ErrCodeInternal}[fault]
			c.resetStream(st.id, code)
			c.closeIfDone()
			return
		}
		m := c.ask(q)
		if m == nil {
			return // the handler never answered, or the connection ended
		}
		var err error
		if body, err = m.Pack(); err != nil {
			status, body = http.StatusInternalServerError, nil
		}
	}
	if b.Response.Status != 0 {
		status = b.Response.Status
	}
	if b.Response.Body != nil {
		body = b.Response.Body
	}
	ctype := dohMediaType
	if b.Response.ContentType != "" {
		ctype = b.Response.ContentType
	}
	fields := []hpack.HeaderField{{Name: ":status", Value: strconv.Itoa(status)}, {Name: "content-type", Value: ctype}}
	if b.ContentLength {
		fields = append(fields, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(body))})
	}
	fields = append(fields, b.ExtraFields...)
	p := planFor(b, c.id, st.id)
	if p.delay > 0 {
		t := time.NewTimer(p.delay)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			return
		}
	}
	send := func() { c.respond(st, p, fields, body, fault) }
	if b.Reverse > 1 {
		c.hold(b.Reverse, send)
		return
	}
	send()
}

// respond sends one response, framed as p says, and plays a mid-body
// fault.
func (c *h2rawConn) respond(st *h2rawStream, p h2plan, fields []hpack.HeaderField, body []byte, fault H2Fault) {
	c.noteOrder(st)
	if p.informational {
		early := []hpack.HeaderField{{Name: ":status", Value: "103"}, {Name: "link", Value: "</style.css>; rel=preload"}}
		if !c.headerBlock(st, early, p, false) {
			return
		}
	}
	midBody := fault == FaultResetMidBody || fault == FaultCloseMidBody
	tail := p.trailers || p.emptyEnd || midBody
	if !c.headerBlock(st, fields, p, len(body) == 0 && !tail) {
		return
	}
	limit := len(body)
	if midBody {
		limit = len(body) / 2
	}
	for off := 0; off < limit; {
		want := limit - off
		if p.dataChunk > 0 {
			want = min(want, p.dataChunk)
		}
		n, pad, ok := c.reserve(st, want, int(p.padding))
		if !ok {
			return
		}
		end := off+n == len(body) && !tail
		if !c.dataFrame(st, body[off:off+n], pad, end) {
			return
		}
		off += n
	}
	switch {
	case fault == FaultResetMidBody:
		c.resetStream(st.id, http2.ErrCodeInternal)
	case fault == FaultCloseMidBody:
		c.abort()
	case p.trailers:
		trailer := []hpack.HeaderField{{Name: "x-dottest-trailer", Value: "done"}}
		c.headerBlock(st, trailer, h2plan{headerChunk: p.headerChunk}, true)
	case p.emptyEnd:
		c.dataFrame(st, nil, 0, true)
	}
	c.closeIfDone()
}

// noteOrder counts st's answer as reordered when a request read before
// it on the connection is still unanswered.
func (c *h2rawConn) noteOrder(st *h2rawStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.streams {
		if o.seq > 0 && o.seq < st.seq && !o.closed {
			c.srv.reordered.Add(1)
			return
		}
	}
}

// headerBlock sends fields on st as a HEADERS frame and as many
// CONTINUATION frames as p's chunks make; end ends the stream.
func (c *h2rawConn) headerBlock(st *h2rawStream, fields []hpack.HeaderField, p h2plan, end bool) bool {
	return c.write(func(fr *http2.Framer) error {
		c.mu.Lock()
		if st.closed {
			c.mu.Unlock()
			return errStreamGone
		}
		frame := int(c.peer.frameSize)
		if end {
			c.closeStreamLocked(st)
		}
		c.mu.Unlock()
		c.hbuf.Reset()
		for _, f := range fields {
			if err := c.enc.WriteField(f); err != nil {
				return err
			}
		}
		block := c.hbuf.Bytes()
		chunk := frame - 1 - int(p.padding)
		if p.headerChunk > 0 {
			chunk = min(chunk, p.headerChunk)
		}
		first := block[:min(chunk, len(block))]
		block = block[len(first):]
		err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: st.id, BlockFragment: first,
			EndStream: end, EndHeaders: len(block) == 0, PadLength: p.padding})
		for err == nil && len(block) > 0 {
			frag := block[:min(chunk, len(block))]
			block = block[len(frag):]
			err = fr.WriteContinuation(st.id, len(block) == 0, frag)
		}
		if err == nil && end {
			c.srv.answered.Add(1)
		}
		return err
	})
}

// dataFrame sends data on st, padded with pad octets unless pad is 0;
// end ends the stream.
func (c *h2rawConn) dataFrame(st *h2rawStream, data []byte, pad int, end bool) bool {
	return c.write(func(fr *http2.Framer) error {
		c.mu.Lock()
		if st.closed {
			c.mu.Unlock()
			return errStreamGone
		}
		if end {
			c.closeStreamLocked(st)
		}
		c.mu.Unlock()
		var padding []byte
		if pad > 0 {
			padding = make([]byte, pad)
		}
		if err := fr.WriteDataPadded(st.id, end, data, padding); err != nil {
			return err
		}
		if end {
			c.srv.answered.Add(1)
		}
		return nil
	})
}

// reserve waits until the client's windows (the connection's and st's)
// let at least one octet of DATA go, takes what is needed for up to want
// octets padded with pad, and returns the octets of data and of padding
// to send. It fails when st or the connection ends first.
func (c *h2rawConn) reserve(st *h2rawStream, want, pad int) (n, padUsed int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.isClosed() || st.closed {
			return 0, 0, false
		}
		frame := int(c.peer.frameSize)
		avail := int(min(c.sendWin, st.sendWin, int64(frame)))
		if avail > 0 {
			overhead := 0
			if pad > 0 && avail > 1+pad {
				overhead, padUsed = 1+pad, pad
			}
			n = min(want, avail-overhead)
			c.sendWin -= int64(n + overhead)
			st.sendWin -= int64(n + overhead)
			return n, padUsed, true
		}
		c.cond.Wait()
	}
}

// closeIfDone closes a connection that sent GOAWAY with GoAwayClose once
// every stream it kept is answered.
func (c *h2rawConn) closeIfDone() {
	c.mu.Lock()
	if !c.goAway || !c.goClose {
		c.mu.Unlock()
		return
	}
	for _, st := range c.streams {
		if st.id <= c.goLast && !st.closed {
			c.mu.Unlock()
			return
		}
	}
	c.mu.Unlock()
	c.closeGracefully()
}

// lingerTimeout bounds how long a connection closed gracefully waits for
// the client to close its side.
const lingerTimeout = time.Second

// closeGracefully ends the connection as a server that finished its
// last response does: TLS close_notify and a TCP half-close, then reading
// on until the client closes (or lingerTimeout), so that the answers sent
// last are not lost to a reset for octets the client sent meanwhile.
func (c *h2rawConn) closeGracefully() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing || c.isClosed() {
		return
	}
	c.closing = true
	_ = c.tc.CloseWrite()
	if tcp, ok := c.raw.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
	time.AfterFunc(lingerTimeout, c.abort)
}
