package dottest

import (
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/net/http2"
)

// headers opens a stream on a client's HEADERS, checking that the client
// may open it.
func (c *h2rawConn) headers(f *http2.MetaHeadersFrame) {
	id := f.StreamID
	c.mu.Lock()
	if st := c.streams[id]; st != nil || id <= c.lastID {
		c.mu.Unlock()
		c.violation("HEADERS on stream %d, not a new one (trailers or a reused ID)", id)
		c.resetStream(id, http2.ErrCodeStreamClosed)
		return
	}
	var breaches []string
	if id%2 == 0 {
		breaches = append(breaches, fmt.Sprintf("stream %d: an even stream ID", id))
	}
	if c.goSeen {
		breaches = append(breaches, fmt.Sprintf("stream %d: opened after GOAWAY (last stream %d) was read", id, c.goLast))
	}
	prev := c.lastID
	c.lastID = id
	st := &h2rawStream{id: id, fields: f.Fields, recvWin: c.laxWindowLocked(), sendWin: c.peer.window}
	c.streams[id] = st
	b := c.srv.behavior.Load()
	goAway := !c.goAway && b.GoAwayAfter > 0 && c.opened >= b.GoAwayAfter &&
		(b.GoAwayConns == 0 || c.id < b.GoAwayConns)
	if goAway {
		c.goAway, c.goLast, c.goClose = true, prev, b.GoAwayClose
	}
	if c.goAway && id > c.goLast {
		st.ignored = true
		c.mu.Unlock()
		c.srv.ignored.Add(1)
		c.complain(breaches)
		if goAway {
			c.write(func(fr *http2.Framer) error { return fr.WriteGoAway(prev, http2.ErrCodeNo, nil) })
			c.ping(true)
			c.closeIfDone()
		}
		return
	}
	c.srv.streams.Add(1)
	c.opened++
	c.open++
	raise(&c.srv.peak, int64(c.open))
	if limit := c.laxMaxStreamsLocked(); limit > 0 && c.open > int(limit) {
		breaches = append(breaches, fmt.Sprintf("stream %d: %d streams open, MAX_CONCURRENT_STREAMS %d", id, c.open, limit))
	}
	c.mu.Unlock()
	c.complain(breaches)
	if f.StreamEnded() {
		c.mu.Lock()
		st.ended = true
		c.mu.Unlock()
		c.request(st)
	}
}

// data takes a DATA frame's octets, checking them against the windows
// granted, and grants them back unless the test withholds grants.
func (c *h2rawConn) data(f *http2.DataFrame) {
	n := int64(f.Header().Length) // padding counts too (RFC 9113 §6.9.1)
	c.mu.Lock()
	var breaches []string
	if n > c.recvWin {
		breaches = append(breaches, fmt.Sprintf("DATA of %d octets, connection window %d", n, c.recvWin))
	}
	c.recvWin -= n
	st := c.streams[f.StreamID]
	switch {
	case st == nil || st.ended || (st.closed && !st.ignored):
		c.mu.Unlock()
		c.violation("DATA on stream %d, not open", f.StreamID)
		c.complain(breaches)
		c.grant(nil, n)
		return
	case n > st.recvWin:
		breaches = append(breaches, fmt.Sprintf("stream %d: DATA of %d octets, window %d", st.id, n, st.recvWin))
	}
	st.recvWin -= n
	st.body = append(st.body, f.Data()...)
	st.ended = f.StreamEnded()
	c.mu.Unlock()
	c.complain(breaches)
	if st.ended || st.ignored {
		c.grant(nil, n) // the stream needs no more
		c.request(st)
		return
	}
	c.grant(st, n)
}

// grant gives n octets of window back on the connection and st (nil:
// the connection only), or owes them while the test withholds grants.
func (c *h2rawConn) grant(st *h2rawStream, n int64) {
	if n == 0 {
		return
	}
	if c.srv.withhold.Load() {
		c.mu.Lock()
		c.owed += n
		if st != nil {
			st.owed += n
		}
		c.mu.Unlock()
		return
	}
	c.write(func(fr *http2.Framer) error {
		c.mu.Lock()
		c.recvWin += n
		if st != nil {
			st.recvWin += n
		}
		c.mu.Unlock()
		if st != nil {
			if err := fr.WriteWindowUpdate(st.id, uint32(n)); err != nil {
				return err
			}
		}
		return fr.WriteWindowUpdate(0, uint32(n))
	})
}

// grantOwed grants every window withheld.
func (c *h2rawConn) grantOwed() {
	c.write(func(fr *http2.Framer) error {
		c.mu.Lock()
		type owed struct {
			id uint32
			n  int64
		}
		var ups []owed
		for _, st := range c.streams {
			if st.owed > 0 && !st.ended && !st.closed {
				st.recvWin += st.owed
				ups = append(ups, owed{st.id, st.owed})
			}
			st.owed = 0
		}
		if c.owed > 0 {
			c.recvWin += c.owed
			ups = append(ups, owed{0, c.owed})
		}
		c.owed = 0
		c.mu.Unlock()
		for _, u := range ups {
			if err := fr.WriteWindowUpdate(u.id, uint32(u.n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// request checks a whole request and has it answered.
func (c *h2rawConn) request(st *h2rawStream) {
	c.mu.Lock()
	ignored := st.ignored
	c.mu.Unlock()
	if ignored {
		return
	}
	c.srv.requests.Add(1)
	seq := c.requests.Add(1)
	c.mu.Lock()
	st.seq = int(seq)
	c.mu.Unlock()
	c.complain(checkRequest(st.id, st.fields, st.body))
	c.srv.wg.Go(func() { c.answer(st) })
}

// closeStreamLocked ends a stream: it counts toward the client's limit
// no longer. Called before the frame that ends it goes out, so that the
// client cannot open the next one before it is counted.
func (c *h2rawConn) closeStreamLocked(st *h2rawStream) {
	if st.closed {
		return
	}
	st.closed = true
	if !st.ignored {
		c.open--
	}
	c.cond.Broadcast()
}

// resetStream ends stream id with RST_STREAM.
func (c *h2rawConn) resetStream(id uint32, code http2.ErrCode) {
	c.write(func(fr *http2.Framer) error {
		c.mu.Lock()
		if st := c.streams[id]; st != nil {
			c.closeStreamLocked(st)
		}
		c.mu.Unlock()
		return fr.WriteRSTStream(id, code)
	})
}

// lastSeen is the last stream the server took, for a GOAWAY.
func (c *h2rawConn) lastSeen() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.goAway {
		return c.goLast
	}
	return c.lastID
}

// waiting counts the streams whose request is still coming.
func (c *h2rawConn) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, st := range c.streams {
		if !st.ended && !st.closed && !st.ignored {
			n++
		}
	}
	return n
}

// write sends what fn writes, whole and flushed, unless the connection is
// silent or closed; a failed write closes it.
func (c *h2rawConn) write(fn func(*http2.Framer) error) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(fn)
}

func (c *h2rawConn) writeLocked(fn func(*http2.Framer) error) bool {
	if c.silent.Load() || c.closing || c.isClosed() {
		return false
	}
	if err := fn(c.fr); err != nil {
		if !errors.Is(err, errStreamGone) {
			c.abort()
		}
		return false
	}
	if err := c.bw.Flush(); err != nil {
		c.abort()
		return false
	}
	return true
}

// raise makes a at least v.
func raise(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}
