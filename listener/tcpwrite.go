package listener

import (
	"encoding/binary"
	"runtime"
	"time"
)

// write sends one answer with its length prefix, and returns once it is
// written (by this caller or another): a worker keeps its query's
// in-flight token until then, so a client that stops reading stops the
// reader at MaxTCPInflightPerConn instead of growing the queue. The
// answer that finds the queue empty while other queries of the
// connection are in flight yields once before it writes, so that those
// among them already runnable queue theirs and one write(2) carries them
// all. A lone answer is written at once: yielding would only let other
// connections' work go first.
func (c *tcpConn) write(wire []byte) error {
	c.qmu.Lock()
	first := len(c.queue) == 0
	c.queue = appendFramed(c.queue, wire)
	c.queued.Add(int64(2 + len(wire)))
	c.qmu.Unlock()
	if first && c.othersBusy() {
		runtime.Gosched()
	}
	return c.drain()
}

// othersBusy reports whether workers answer other queries of the
// connection than the caller's.
func (c *tcpConn) othersBusy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy > 1
}

// flush sends answers that carry their length prefixes already (the
// reader's fast answers) and returns once they are written, so that the
// reader reads no more while a write is stuck.
func (c *tcpConn) flush(answers []byte) error {
	if len(answers) == 0 {
		return nil
	}
	c.qmu.Lock()
	c.queue = append(c.queue, answers...)
	c.queued.Add(int64(len(answers)))
	c.qmu.Unlock()
	return c.drain()
}

// drain writes the queue once the write under way (if any) is done; a
// caller whose answers that write took finds the queue empty. A failed
// write closes the connection: half an answer leaves the stream
// unreadable.
func (c *tcpConn) drain() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.qmu.Lock()
	buf := c.queue
	c.queue, c.spare = c.spare[:0], nil
	c.qmu.Unlock()
	if len(buf) == 0 {
		return nil
	}

	// A client that takes longer than the idle timeout to take its
	// answers is not reading any more.
	c.conn.SetWriteDeadline(time.Now().Add(c.srv.live.Load().tcpIdle))
	if c.srv.abandoned.Load() {
		// Checked after the deadline is set: either this sees Shutdown
		// give up, or Shutdown's shorter deadline comes after ours.
		c.conn.SetWriteDeadline(time.Now().Add(lastWriteTimeout))
	}
	_, err := c.conn.Write(buf)
	c.queued.Add(-int64(len(buf)))
	c.qmu.Lock()
	if cap(buf) <= maxSpare {
		c.spare = buf[:0]
	}
	c.qmu.Unlock()
	if err != nil {
		c.srv.log.Debug("writing TCP answers failed", "client", c.client, "err", err)
		c.conn.Close()
	}
	return err
}

// appendFramed appends wire to dst with its length prefix.
func appendFramed(dst, wire []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(wire)))
	return append(dst, wire...)
}

// maxSpare is the largest write buffer a connection keeps for reuse: a
// burst of big answers must not pin its memory for the connection's life.
const maxSpare = 64 << 10
