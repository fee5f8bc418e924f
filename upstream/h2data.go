package upstream

import (
	"fmt"
	"net/http"

	"golang.org/x/net/http2"
)

// onData takes a piece of a response's body. Every DATA frame counts
// against the connection's window, a stream's given up on included: the
// server counted it.
//
// The windows are given back as they are used, so a server can never be
// caught sending beyond them (a receiver knows only what it granted, and
// it grants as it reads): what bounds a server that sends too much is the
// body's bound (checkDNSBody), and frames on forgotten streams are read
// and dropped.
func (c *h2Conn) onData(f *http2.DataFrame) error {
	n := int32(f.Length)
	c.mu.Lock()
	c.recvUsed += n
	var update int32
	if c.recvUsed >= h2ConnWindow/2 {
		update, c.recvUsed = c.recvUsed, 0
	}
	st := c.streams[f.StreamID]
	var bad error                  // the body is refused: the query fails
	badCode := http2.ErrCodeCancel // what the server is told then
	var streamUpdate int32
	ended := false
	var whole []byte // the body, when this frame is all of it
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
		st.got += int64(len(f.Data()))
		// A status other than 200 is the error, whatever its body: it
		// is not kept.
		switch {
		case st.got > st.length && st.length >= 0 || f.StreamEnded() && !st.lengthMatches():
			// Malformed (RFC 9113 §8.1.1): a stream error, unless
			// the server has ended the stream already.
			bad, badCode = st.lengthError(), http2.ErrCodeProtocol
			if f.StreamEnded() {
				badCode = 0
			}
		case st.status == http.StatusOK:
			bad = checkDNSBody(len(st.body) + len(f.Data()))
			switch {
			case bad != nil:
			case len(st.body) == 0 && f.StreamEnded():
				// The whole body in one frame, as servers send
				// a DNS answer: unpacked from the framer's buffer
				// (finish, below, before the next frame is read)
				// with no copy of its own.
				whole = f.Data()
			default:
				st.body = append(st.body, f.Data()...)
			}
		}
		if ended = bad == nil && f.StreamEnded(); ended {
			c.removeLocked(st.id)
			c.answeredLocked()
		}
	}
	c.mu.Unlock()
	if ended {
		if whole == nil {
			whole = st.body
		}
		st.finish(whole)
		streamUpdate = 0 // the stream is over
	}
	if bad != nil {
		c.failStream(f.StreamID, bad, badCode)
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
