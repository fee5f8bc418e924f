package upstream

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"time"
)

// write queues the packed query wire, with id written in, and sends it:
// itself when nothing else is in flight on the connection and no write
// is under way, otherwise through the connection's writer. A caller
// whose context is done sends nothing and gets the context's error; on a
// closed connection it gets why it closed. A write that fails closes the
// connection, which fails the query with every other waiting on it.
//
// Why write in the caller: a lone query on an idle connection has nothing
// to share a write with, and handing it to the writer costs a wake-up and
// a switch to another goroutine on the query's path, which at low rates
// is most of what the query waits for on our side. Under load there is
// always something in flight, and the writer batches.
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
	inline := at == 0 && !c.writing && c.load.Load() <= 1
	c.qmu.Unlock()
	if inline {
		return c.flush()
	}
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
		if c.flush() != nil {
			return
		}
	}
}

// flush writes what is queued, and what is queued while it writes, unless
// another goroutine is writing already (that one takes it). A write error
// closes the connection, and is returned.
func (c *conn) flush() error {
	c.qmu.Lock()
	if c.writing {
		c.qmu.Unlock()
		return nil
	}
	c.writing = true
	for len(c.queue) > 0 {
		buf := c.queue
		c.queue, c.spare = c.spare[:0], nil
		c.qmu.Unlock()
		// A query is a few hundred octets that the socket buffer takes
		// at once; a write blocked for writeTimeout has a peer that
		// stopped reading.
		c.tc.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := c.tc.Write(buf)
		c.qmu.Lock()
		c.spare = buf[:0]
		if err != nil {
			c.writing = false
			c.qmu.Unlock()
			// crypto/tls makes a write error permanent, and part of a
			// query may be out: the connection is done.
			err = fmt.Errorf("%w: writing query: %w", ErrConnClosed, err)
			c.close(err)
			return err
		}
	}
	c.writing = false
	c.qmu.Unlock()
	return nil
}
