package upstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// post implements httpConn: a POST of wire on a new stream, and its
// answer.
func (c *h2Conn) post(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error) {
	st := new(h2Stream)
	if err := c.open(ctx, st, wire, q, true); err != nil {
		return nil, err
	}
	select {
	case r := <-st.ch:
		return r.msg, r.err
	case <-ctx.Done():
		c.cancel(st, http2.ErrCodeCancel)
		c.giveUp()
		return nil, ctx.Err()
	}
}

// errNotNow: a connection cannot take a query without waiting (the
// server's stream limit reached, or its windows short of the query).
var errNotNow = errors.New("no stream or window free now")

// open starts the query's stream as st, which the caller allocates (a
// flight holds it) and the connection fills in: its HEADERS and as much
// of its DATA as the server's windows allow go out at once, the rest as
// WINDOW_UPDATEs come. With wait, it waits for a stream when the server's
// limit is reached; without, it returns errNotNow, having sent nothing,
// when the query would have to wait for a stream or for window.
func (c *h2Conn) open(ctx context.Context, st *h2Stream, wire []byte, q dns.Question, wait bool) error {
	if err := ctx.Err(); err != nil {
		return err // out of time: send nothing
	}
	c.wmu.Lock()
	err := c.newStream(ctx, st, wait, len(wire), q)
	if err != nil {
		c.wmu.Unlock()
		return err
	}
	err = c.writeHeaders(st.id, len(wire))
	if err == nil {
		err = c.writeData(ctx, st, wire) // unlocks wmu
	} else {
		c.wmu.Unlock()
	}
	if err != nil {
		c.cancel(st, http2.ErrCodeCancel)
		return err
	}
	return nil
}

// newStream takes the next stream ID for a query to q of size octets,
// st registered as its stream (set under mu, for the reader). With
// wait it waits (with wmu released) while the server's stream limit is
// reached; without, it returns errNotNow unless a stream is free and the
// windows take the whole query. It is called, and returns, with wmu
// held.
func (c *h2Conn) newStream(ctx context.Context, st *h2Stream, wait bool, size int, q dns.Question) error {
	c.mu.Lock()
	for {
		free := uint32(len(c.streams)) < c.maxStreams
		switch {
		case c.err != nil:
			err := c.err
			c.mu.Unlock()
			return err
		case c.goAway || c.nextID.Load() > h2MaxStreamID:
			c.mu.Unlock()
			return fmt.Errorf("%w: the server takes no new streams (GOAWAY): %w", ErrConnClosed, errUnprocessed)
		case !wait && (!free || int64(min(c.sendWindow, c.initWindow)) < int64(size) || c.maxFrame == 0):
			c.mu.Unlock()
			return errNotNow
		case free:
			if len(c.streams) == 0 && c.unanswered == 0 {
				c.quietSince = time.Now() // idle time is no failure
			}
			*st = h2Stream{id: c.nextID.Add(2) - 2, sendWindow: c.initWindow, q: q, ch: make(chan result, 1)}
			c.streams[st.id] = st
			c.mu.Unlock()
			return nil
		}
		if err := c.awaitLocked(ctx); err != nil {
			return err
		}
		c.mu.Lock()
	}
}

// requestFields is how many header fields writeHeaders encodes.
const requestFields = 7

// writeHeaders writes a request's HEADERS: only what RFC 8484 needs. No
// User-Agent or any other field that tells which software asks.
func (c *h2Conn) writeHeaders(id uint32, length int) error {
	// The block is some 30 octets, far below any frame size limit
	// (16 KiB at least): it never needs CONTINUATION frames.
	return c.wrap("writing request", c.wfr.WriteHeaders(http2.HeadersFrameParam{
		StreamID:      id,
		BlockFragment: c.headerBlock(length),
		EndHeaders:    true,
	}))
}

// headerBlock is the HPACK block of a request with a body of length
// octets, as c.enc encodes it. Every field of a request but its length is
// the same on a connection, and queries are padded to a few lengths: once
// the encoder's table holds them all, the block is one reference to the
// table per field, and encoding it again would give the same octets and
// leave the encoder as it was. Such a block is kept (hbuf) and sent again
// for the next request of that length, until the encoder is used or
// changed (hreuse). A block with any other representation (a literal that
// adds to the table, a table size update) is never sent twice.
func (c *h2Conn) headerBlock(length int) []byte {
	if c.hreuse && c.hlen == length {
		return c.hbuf.Bytes()
	}
	c.hbuf.Reset()
	c.enc.WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
	c.enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: "https"})
	c.enc.WriteField(hpack.HeaderField{Name: ":authority", Value: c.authority})
	c.enc.WriteField(hpack.HeaderField{Name: ":path", Value: c.path})
	c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: dohMediaType})
	c.enc.WriteField(hpack.HeaderField{Name: "accept", Value: dohMediaType})
	c.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(length)})
	c.hlen, c.hreuse = length, allIndexed(c.hbuf.Bytes(), requestFields)
	return c.hbuf.Bytes()
}

// allIndexed reports whether block is n HPACK indexed header fields of
// one octet each (RFC 7541 §6.1: the high bit set, an index under 127),
// and nothing else.
func allIndexed(block []byte, n int) bool {
	if len(block) != n {
		return false
	}
	for _, b := range block {
		if b&0x80 == 0 {
			return false
		}
	}
	return true
}

// writeData writes wire as st's DATA, ending the stream, within the
// server's windows and frame size, waiting for its WINDOW_UPDATEs when
// they are short. It is called with wmu held and releases it.
func (c *h2Conn) writeData(ctx context.Context, st *h2Stream, wire []byte) error {
	for {
		c.mu.Lock()
		n := min(int32(len(wire)), c.sendWindow, st.sendWindow, int32(c.maxFrame))
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			c.wmu.Unlock()
			return err
		}
		if c.streams[st.id] != st {
			// Ended already (reset, GOAWAY): its result is on st.ch,
			// and no more of it goes out.
			c.mu.Unlock()
			c.wmu.Unlock()
			return nil
		}
		if n > 0 || len(wire) == 0 {
			c.sendWindow -= n
			st.sendWindow -= n
			c.mu.Unlock()
			last := int(n) == len(wire)
			err := c.wfr.WriteData(st.id, last, wire[:n])
			if err != nil || last {
				c.wmu.Unlock()
				return c.wrap("writing request", err)
			}
			wire = wire[n:]
			continue
		}
		// Out of window: let other streams' frames go out while the
		// server reads.
		if err := c.awaitLocked(ctx); err != nil {
			c.wmu.Unlock()
			return err
		}
	}
}

// awaitLocked releases mu and wmu, waits for the next change of the
// streams, the windows or the connection's state (changedLocked) or for
// ctx's end, and takes wmu again.
func (c *h2Conn) awaitLocked(ctx context.Context) error {
	changed := c.changedLocked()
	c.mu.Unlock()
	c.wmu.Unlock()
	var err error
	select {
	case <-changed:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.wmu.Lock()
	return err
}

// cancel ends st unanswered: the server is told (RST_STREAM) unless the
// stream is over already, and the stream frees its slot.
func (c *h2Conn) cancel(st *h2Stream, code http2.ErrCode) {
	c.mu.Lock()
	_, open := c.streams[st.id]
	if open {
		c.removeLocked(st.id)
	}
	ended := c.err != nil
	c.mu.Unlock()
	if open && !ended {
		c.wmu.Lock()
		c.wfr.WriteRSTStream(st.id, code)
		c.wmu.Unlock()
	}
}

// removeLocked forgets a stream and wakes a request waiting for one.
func (c *h2Conn) removeLocked(id uint32) {
	delete(c.streams, id)
	c.wakeLocked()
}

// changedLocked returns a channel closed at the next change of the
// streams' count, the windows or the connection's state.
func (c *h2Conn) changedLocked() <-chan struct{} {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// wakeLocked wakes whatever waits in changedLocked.
func (c *h2Conn) wakeLocked() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// wrap marks a write's failure as the connection's: the batchConn fails
// writes only once the connection is broken.
func (c *h2Conn) wrap(action string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrConnClosed, action, err)
}
