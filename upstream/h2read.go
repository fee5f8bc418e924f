package upstream

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/net/http2"
)

// readLoop reads the server's frames until the connection ends, and
// then ends it with why.
func (c *h2Conn) readLoop() {
	for {
		fh, err := c.rfr.ReadFrameHeader()
		if err == nil {
			if err = c.checkIdle(fh); err != nil {
				c.end(err)
				return
			}
		}
		var f http2.Frame
		if err == nil {
			f, err = c.rfr.ReadFrameForHeader(fh)
		}
		if err != nil {
			var se http2.StreamError
			switch {
			case errors.As(err, &se) && fh.Type == http2.FrameHeaders && se.Cause == nil:
				// A HEADERS frame refused before its header block was
				// decoded (padding longer than the frame): our HPACK
				// state is no longer the server's encoder's (RFC 9113
				// §4.3), and every later block would decode wrong.
				c.end(c.protocolError(http2.ErrCodeCompression, fmt.Errorf("malformed HEADERS on stream %d: %w", se.StreamID, err)))
				return
			case errors.As(err, &se):
				// A malformed response on one stream (RFC 9113 §8.1.1):
				// that query fails, the others go on.
				c.failStream(se.StreamID, fmt.Errorf("%w: %v", ErrBadAnswer, se), se.Code)
				continue
			}
			c.end(c.readErr(err))
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		if err := c.handle(f); err != nil {
			c.end(err)
			return
		}
	}
}

// readErr says why reading failed: the connection's end, or a protocol
// error of the server's, which is told in a GOAWAY before closing.
func (c *h2Conn) readErr(err error) error {
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		return c.protocolError(http2.ErrCode(ce), fmt.Errorf("%v: %v", err, c.rfr.ErrorDetail()))
	case errors.Is(err, http2.ErrFrameTooLarge):
		return c.protocolError(http2.ErrCodeFrameSize, err)
	}
	return fmt.Errorf("%w: reading answer: %w", ErrConnClosed, err)
}

// handle acts on one frame; an error ends the connection.
func (c *h2Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.MetaHeadersFrame:
		c.onHeaders(f)
	case *http2.RSTStreamFrame:
		err := fmt.Errorf("%w: RST_STREAM %v", ErrStreamReset, f.ErrCode)
		if f.ErrCode == http2.ErrCodeRefusedStream {
			// Never processed (RFC 9113 §8.7): worth sending again.
			err = fmt.Errorf("%w: %w", err, errUnprocessed)
		}
		c.failStream(f.StreamID, err, 0)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			c.pingSent.Store(0)
			return nil
		}
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.wfr.WritePing(true, f.Data)
	case *http2.GoAwayFrame:
		c.onGoAway(f)
	case *http2.PushPromiseFrame:
		// Push is off in our SETTINGS (RFC 9113 §8.4).
		return c.protocolError(http2.ErrCodeProtocol, errors.New("PUSH_PROMISE with push disabled"))
	}
	// PRIORITY, unknown frame types: nothing to do (RFC 9113 §5.5).
	return nil
}

// onHeaders takes a response's header fields: the status and media type
// from the first block, nothing from trailers. An interim (1xx) response
// is skipped.
func (c *h2Conn) onHeaders(f *http2.MetaHeadersFrame) {
	c.mu.Lock()
	st := c.streams[f.StreamID]
	if st == nil {
		c.mu.Unlock()
		return // given up on, or not ours
	}
	if f.Truncated {
		c.mu.Unlock()
		c.failStream(f.StreamID, fmt.Errorf("%w: response header fields over %d octets", ErrBadAnswer, h2MaxHeaderList), http2.ErrCodeCancel)
		return
	}
	if st.status != 0 && (!f.StreamEnded() || len(f.PseudoFields()) > 0) {
		// A block after the response's is its trailers: it ends the
		// stream and has no pseudo-header (RFC 9113 §8.1). A stream
		// the server ended needs no reset.
		c.mu.Unlock()
		code := http2.ErrCodeProtocol
		if f.StreamEnded() {
			code = 0
		}
		c.failStream(f.StreamID, fmt.Errorf("%w: HTTP/2 trailers that do not end the stream or carry pseudo-headers", ErrBadAnswer), code)
		return
	}
	if st.status == 0 {
		status, err := strconv.Atoi(f.PseudoValue("status"))
		switch {
		case err != nil || status < 100 || status == 101 || status < 200 && f.StreamEnded():
			// 101 has no place in HTTP/2, and an interim response
			// cannot end the stream (RFC 9113 §8.1, §8.6).
			c.mu.Unlock()
			c.failStream(f.StreamID, fmt.Errorf("%w: HTTP/2 :status %q", ErrBadAnswer, f.PseudoValue("status")), http2.ErrCodeProtocol)
			return
		case status < 200:
			c.mu.Unlock()
			return
		}
		st.status, st.length = status, -1
		for _, hf := range f.RegularFields() {
			switch hf.Name {
			case "content-type":
				st.ctype = hf.Value
			case "content-length":
				n, err := strconv.ParseInt(hf.Value, 10, 64)
				if err != nil || n < 0 || st.length >= 0 && n != st.length {
					c.mu.Unlock()
					c.failStream(f.StreamID, fmt.Errorf("%w: content-length %q", ErrBadAnswer, hf.Value), http2.ErrCodeProtocol)
					return
				}
				st.length = n
			}
		}
	}
	ended := f.StreamEnded()
	if ended && !st.lengthMatches() {
		c.mu.Unlock()
		c.failStream(f.StreamID, st.lengthError(), 0) // ended by the server: nothing to reset
		return
	}
	if ended {
		c.removeLocked(st.id)
		c.answeredLocked()
	}
	c.mu.Unlock()
	if ended {
		st.finish(st.body)
	}
}

// lengthMatches reports whether the body received is as long as the
// response's content-length said, or there was none.
func (st *h2Stream) lengthMatches() bool { return st.length < 0 || st.got == st.length }

// lengthError is the query's failure when the body is not as long as
// its content-length said.
func (st *h2Stream) lengthError() error {
	return fmt.Errorf("%w: content-length %d, body of %d octets or more", ErrBadAnswer, st.length, st.got)
}

// finish hands a stream's response, ended and removed from the table,
// to its query, with body, the response's body. A DNS answer is unpacked
// here, on the reader, as DoT's reader does: the query's goroutine is new
// for each query, and would grow its stack for the unpacking every time.
// The message keeps nothing of body (dns.Msg.Unpack copies what it
// keeps), which may be the framer's buffer.
func (st *h2Stream) finish(body []byte) {
	ans := dohAnswer{status: st.status, contentType: st.ctype, body: body}
	m, err := ans.message(st.q)
	st.ch <- result{msg: m, err: err}
}

// failStream fails the query on stream id with err, telling the server
// with code unless it is 0 (the server ended the stream itself).
func (c *h2Conn) failStream(id uint32, err error, code http2.ErrCode) {
	c.mu.Lock()
	st := c.streams[id]
	if st != nil {
		c.removeLocked(id)
	}
	c.mu.Unlock()
	if st == nil {
		return
	}
	st.ch <- result{err: err}
	if code != 0 {
		c.wmu.Lock()
		c.wfr.WriteRSTStream(id, code)
		c.wmu.Unlock()
	}
}
