package upstream

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"time"
)

// write queues the packed query wire, with id written in, for the
// connection's writer. A caller whose context is done sends nothing and
// gets the context's error; on a closed connection it gets why it
// closed. A write that fails later closes the connection, which fails
// the query with every other waiting on it.
func (c *conn) write(ctx context.Context, wire []byte, id uint16) error {
	if err := ctx.Err(); err != nil {
		return err // out of time: send nothing
	}
	if !c.alive() {
		return c.closeErr()
	}
	c.qmu.Lock()
	at := len(c.queue)
	c.queue = binary.BigEndian.AppendUint16(c.queue, uint16(len(wire)))
	c.queue = append(c.queue, wire...)
	binary.BigEndian.PutUint16(c.queue[at+2:], id)
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the writer has been told already
	}
	return nil
}

// writeLoop sends what is queued each time it is told, in one TLS record
// and one write(2): one query when they come one at a time, many when
// queries queue up faster than the socket takes them. It runs until the
// connection closes.
func (c *conn) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		// Let the queries already runnable queue theirs first: an
		// answer read wakes many waiting queries at once, and their
		// successors then share one write. Nothing waits when nothing
		// else is runnable.
		runtime.Gosched()
		c.qmu.Lock()
		buf := c.queue
		c.queue, c.spare = c.spare[:0], nil
		c.qmu.Unlock()
		if len(buf) == 0 {
			continue
		}
		// A query is a few hundred octets that the socket buffer takes
		// at once; a write blocked for writeTimeout has a peer that
		// stopped reading.
		c.tc.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := c.tc.Write(buf)
		c.qmu.Lock()
		c.spare = buf[:0]
		c.qmu.Unlock()
		if err != nil {
			// crypto/tls makes a write error permanent, and part of a
			// query may be out: the connection is done.
			c.close(fmt.Errorf("%w: writing query: %w", ErrConnClosed, err))
			return
		}
	}
}
