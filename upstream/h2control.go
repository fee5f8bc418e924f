package upstream

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/net/http2"
)

// onSettings applies the server's SETTINGS and acknowledges them.
func (c *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.wmu.Lock()
	c.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err // out of range (RFC 9113 §6.5.2)
		}
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams = s.Val
		case http2.SettingMaxFrameSize:
			c.maxFrame = s.Val
		case http2.SettingInitialWindowSize:
			// A change applies to the open streams too, and may not
			// take one over 2^31-1 (RFC 9113 §6.9.2).
			delta := int64(s.Val) - int64(c.initWindow)
			for _, st := range c.streams {
				if int64(st.sendWindow)+delta > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			for _, st := range c.streams {
				st.sendWindow += int32(delta)
			}
			c.initWindow = int32(s.Val)
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(s.Val)
			c.hreuse = false // the table may have shrunk: encode again
		}
		return nil
	})
	c.wakeLocked()
	c.mu.Unlock()
	if err == nil {
		err = c.wfr.WriteSettingsAck()
	}
	c.wmu.Unlock()
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		return c.protocolError(http2.ErrCode(ce), fmt.Errorf("SETTINGS: %w", err))
	}
	return err
}

// onWindowUpdate adds to the connection's or a stream's send window; a
// window over 2^31-1 is the server's error (RFC 9113 §6.9.1).
func (c *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	c.mu.Lock()
	over := false
	if f.StreamID == 0 {
		if over = int64(c.sendWindow)+inc > maxWindow; !over {
			c.sendWindow += int32(inc)
		}
	} else if st := c.streams[f.StreamID]; st != nil {
		if over = int64(st.sendWindow)+inc > maxWindow; !over {
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
// within closeNotifyTimeout) when we closed it or told the server why
// (GOAWAY), at once otherwise.
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
	told := goAwaySent{}
	shutTLS(err == errH2Closed || errors.As(err, &told), c.bc.Close, func() { c.tc.NetConn().Close() })
	close(c.done)
}

// answeredLocked records a response finished: the connection answers.
func (c *h2Conn) answeredLocked() {
	c.quietSince = time.Now()
	c.unanswered = 0
}

// giveUp records a query abandoned unanswered. A connection that keeps
// taking queries and finishing no response for stallAfter, though it
// answers PINGs (a server whose resolver behind it is wedged), is ended
// as stalled, as a DoT connection is (conn.giveUp): its queries fail
// over at once instead of each costing its attempt's time.
func (c *h2Conn) giveUp() {
	after := c.stallAfter()
	c.mu.Lock()
	c.unanswered++
	stalled := c.unanswered >= unansweredLimit && time.Since(c.quietSince) >= after
	c.mu.Unlock()
	if stalled {
		c.end(ErrStalled)
	}
}

// checkIdle refuses a frame about a stream we never opened: a server
// opens none (push is off), and a stream above the last we opened is
// idle; either is the connection's PROTOCOL_ERROR (RFC 9113 §5.1). A
// stream we opened and have since forgotten (answered, reset, given up
// on) may still see frames the server sent before it knew.
func (c *h2Conn) checkIdle(fh http2.FrameHeader) error {
	switch fh.Type {
	case http2.FrameData, http2.FrameHeaders, http2.FrameRSTStream, http2.FrameWindowUpdate, http2.FrameContinuation:
	default:
		return nil // PRIORITY may name any stream; the rest name none
	}
	if id := fh.StreamID; id != 0 && (id%2 == 0 || id >= c.nextID.Load()) {
		return c.protocolError(http2.ErrCodeProtocol, fmt.Errorf("%v frame on stream %d, which we never opened", fh.Type, id))
	}
	return nil
}

// protocolError tells the server (GOAWAY with code) and returns the
// connection's end.
func (c *h2Conn) protocolError(code http2.ErrCode, err error) error {
	// Last-Stream-ID is the last stream the server opened that we
	// processed: none, with push off (RFC 9113 §6.8).
	c.wmu.Lock()
	c.wfr.WriteGoAway(0, code, nil)
	c.wmu.Unlock()
	return goAwaySent{fmt.Errorf("%w: HTTP/2 %v: %w", ErrConnClosed, code, err)}
}

// goAwaySent is a connection's end that our GOAWAY told the server: the
// socket is still good, and the GOAWAY goes out before it is closed.
type goAwaySent struct{ error }

func (e goAwaySent) Unwrap() error { return e.error }
