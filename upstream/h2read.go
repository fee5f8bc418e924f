package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/http2"
)

// readLoop reads the server's frames until the connection ends, and
// then ends it with why.
func (c *h2Conn) readLoop() {
	for {
		f, err := c.rfr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
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

// protocolError tells the server (GOAWAY with code) and returns the
// connection's end.
func (c *h2Conn) protocolError(code http2.ErrCode, err error) error {
	// Last-Stream-ID is the last stream the server opened that we
	// processed: none, with push off (RFC 9113 §6.8).
	c.wmu.Lock()
	c.wfr.WriteGoAway(0, code, nil)
	c.wmu.Unlock()
	return fmt.Errorf("%w: HTTP/2 %v: %w", ErrConnClosed, code, err)
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
		st.status = status
		for _, hf := range f.RegularFields() {
			if hf.Name == "content-type" {
				st.ctype = hf.Value
			}
		}
	}
	ended := f.StreamEnded()
	if ended {
		c.removeLocked(st.id)
		c.answeredLocked()
	}
	c.mu.Unlock()
	if ended {
		st.finish()
	}
}

// onData takes a piece of a response's body. Every DATA frame counts
// against the connection's window, a stream's given up on included: the
// server counted it.
func (c *h2Conn) onData(f *http2.DataFrame) error {
	n := int32(f.Length)
	c.mu.Lock()
	c.recvUsed += n
	var update int32
	if c.recvUsed >= h2ConnWindow/2 {
		update, c.recvUsed = c.recvUsed, 0
	}
	st := c.streams[f.StreamID]
	var tooLong error
	var streamUpdate int32
	ended := false
	if st != nil {
		if st.status == 0 {
			c.mu.Unlock()
			c.failStream(f.StreamID, fmt.Errorf("%w: DATA before the response's HEADERS", ErrBadAnswer), http2.ErrCodeProtocol)
			return c.giveBack(0, update)
		}
		// Padding counts against the stream's window too: a body
		// framed in tiny padded frames must not run it dry.
		if st.recvUsed += n; st.recvUsed >= h2StreamWindow/2 {
			streamUpdate, st.recvUsed = st.recvUsed, 0
		}
		// A status other than 200 is the error, whatever its body: it
		// is not kept.
		if st.status == http.StatusOK {
			if tooLong = checkDNSBody(len(st.body) + len(f.Data())); tooLong == nil {
				st.body = append(st.body, f.Data()...)
			}
		}
		if ended = tooLong == nil && f.StreamEnded(); ended {
			c.removeLocked(st.id)
			c.answeredLocked()
		}
	}
	c.mu.Unlock()
	if ended {
		st.finish()
		streamUpdate = 0 // the stream is over
	}
	if tooLong != nil {
		c.failStream(f.StreamID, tooLong, http2.ErrCodeCancel)
		streamUpdate = 0
	}
	if err := c.giveBack(f.StreamID, streamUpdate); err != nil {
		return err
	}
	return c.giveBack(0, update)
}

// giveBack returns n octets of stream id's receive window (0: the
// connection's) to the server, if any.
func (c *h2Conn) giveBack(id uint32, n int32) error {
	if n == 0 {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wfr.WriteWindowUpdate(id, uint32(n))
}

// finish hands a stream's response, ended and removed from the table,
// to its query. A DNS answer is unpacked here, on the reader, as DoT's
// reader does: the query's goroutine is new for each query, and would
// grow its stack for the unpacking every time.
func (st *h2Stream) finish() {
	ans := dohAnswer{status: st.status, contentType: st.ctype, body: st.body}
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
