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
	c.mu.Lock()
	last := c.nextID - 2
	c.mu.Unlock()
	c.wmu.Lock()
	c.wfr.WriteGoAway(last, code, nil)
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
		c.failStream(f.StreamID, fmt.Errorf("%w: RST_STREAM %v", ErrStreamReset, f.ErrCode), 0)
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
	if st.status == 0 {
		status, err := strconv.Atoi(f.PseudoValue("status"))
		switch {
		case err != nil || status < 100:
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
	ended := false
	if st != nil {
		if st.status == 0 {
			c.mu.Unlock()
			return c.protocolError(http2.ErrCodeProtocol, fmt.Errorf("DATA before HEADERS on stream %d", f.StreamID))
		}
		if tooLong = checkDNSBody(len(st.body) + len(f.Data())); tooLong == nil {
			st.body = append(st.body, f.Data()...)
			if ended = f.StreamEnded(); ended {
				c.removeLocked(st.id)
			}
		}
	}
	c.mu.Unlock()
	if ended {
		st.finish()
	}
	if tooLong != nil {
		c.failStream(f.StreamID, tooLong, http2.ErrCodeCancel)
	}
	if update > 0 {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.wfr.WriteWindowUpdate(0, uint32(update))
	}
	return nil
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

// onSettings applies the server's SETTINGS and acknowledges them.
func (c *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams = s.Val
		case http2.SettingMaxFrameSize:
			c.maxFrame = s.Val // Framer checked 2^14..2^24-1
		case http2.SettingInitialWindowSize:
			// Framer checked ≤ 2^31-1. A change applies to the open
			// streams too (RFC 9113 §6.9.2).
			delta := int32(s.Val) - c.initWindow
			c.initWindow = int32(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
			}
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
	c.wakeLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.wfr.WriteSettingsAck()
}

// onWindowUpdate adds to the connection's or a stream's send window; a
// window over 2^31-1 is the server's error (RFC 9113 §6.9.1).
func (c *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	c.mu.Lock()
	over := false
	if f.StreamID == 0 {
		if over = int64(c.sendWindow)+inc > h2MaxStreamID; !over {
			c.sendWindow += int32(inc)
		}
	} else if st := c.streams[f.StreamID]; st != nil {
		if over = int64(st.sendWindow)+inc > h2MaxStreamID; !over {
			st.sendWindow += int32(inc)
		}
	}
	c.wakeLocked()
	c.mu.Unlock()
	switch {
	case over && f.StreamID == 0:
		return c.protocolError(http2.ErrCodeFlowControl, errors.New("connection window over 2^31-1"))
	case over:
		c.failStream(f.StreamID, fmt.Errorf("%w: stream window over 2^31-1", ErrBadAnswer), http2.ErrCodeFlowControl)
	}
	return nil
}

// onGoAway stops new streams; those the server will not process (above
// its last stream ID) fail as the connection's loss, so that their
// queries are resent on another.
func (c *h2Conn) onGoAway(f *http2.GoAwayFrame) {
	c.mu.Lock()
	c.goAway = true
	var lost []*h2Stream
	for id, st := range c.streams {
		if id > f.LastStreamID {
			lost = append(lost, st)
			delete(c.streams, id)
		}
	}
	c.wakeLocked()
	c.mu.Unlock()
	for _, st := range lost {
		st.ch <- result{err: fmt.Errorf("%w: GOAWAY %v: %w", ErrConnClosed, f.ErrCode, errUnprocessed)}
	}
}

// checkAlive runs pingAfter after the last frame read: a connection
// silent that long gets a PING, and is given up pingTimeout later if
// still nothing came, so that a server gone without a FIN or a reset
// does not keep taking queries that can only time out.
func (c *h2Conn) checkAlive() {
	select {
	case <-c.done:
		return
	default:
	}
	now := time.Now()
	last := time.Unix(0, c.lastRead.Load())
	sent := c.pingSent.Load()
	switch {
	case sent != 0 && last.UnixNano() < sent && now.Sub(time.Unix(0, sent)) >= pingTimeout:
		c.end(fmt.Errorf("%w: no answer to PING in %v", ErrConnClosed, pingTimeout))
		return
	case sent != 0 && last.UnixNano() < sent:
		c.pinger.Reset(pingTimeout - now.Sub(time.Unix(0, sent)))
		return
	case now.Sub(last) < pingAfter:
		c.pinger.Reset(pingAfter - now.Sub(last))
		return
	}
	c.pingSent.Store(now.UnixNano())
	c.wmu.Lock()
	err := c.wfr.WritePing(false, [8]byte{'d', 'o', 't', 'p', 'r', 'o', 'x', 'y'})
	c.wmu.Unlock()
	if err != nil {
		c.end(c.wrap("writing PING", err))
		return
	}
	c.pinger.Reset(pingTimeout)
}

// end ends the connection once, failing every query on it with err, and
// closes the socket: in good order (what is queued, then close_notify,
// within closeNotifyTimeout) when we closed it, at once otherwise.
func (c *h2Conn) end(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	streams := c.streams
	c.streams = nil
	c.wakeLocked()
	c.mu.Unlock()
	c.pinger.Stop()
	for _, st := range streams {
		st.ch <- result{err: err}
	}
	force := time.AfterFunc(closeNotifyTimeout, func() { c.tc.NetConn().Close() })
	if err != errH2Closed {
		c.tc.NetConn().Close()
	}
	c.bc.Close()
	force.Stop()
	close(c.done)
}
