package listener

import (
	"encoding/binary"
	"runtime"
	"time"
)

// write sends one answer with its length prefix. Answers queue up; the
// one that finds the queue empty writes the queue, after the workers
// already runnable have added theirs, so that under load one write(2)
// carries many answers.
func (c *tcpConn) write(wire []byte) error {
	c.qmu.Lock()
	first := len(c.queue) == 0
	c.queue = binary.BigEndian.AppendUint16(c.queue, uint16(len(wire)))
	c.queue = append(c.queue, wire...)
	c.qmu.Unlock()
	if !first {
		return nil // the writer of this queue has not taken it yet
	}
	runtime.Gosched()
	return c.drain()
}

// flush sends answers that carry their length prefixes already: the
// reader's fast answers, at once.
func (c *tcpConn) flush(answers []byte) error {
	if len(answers) == 0 {
		return nil
	}
	c.qmu.Lock()
	first := len(c.queue) == 0
	c.queue = append(c.queue, answers...)
	c.qmu.Unlock()
	if !first {
		return nil
	}
	return c.drain()
}

// drain writes the queue once the write under way (if any) is done. A
// failed write closes the connection: half an answer leaves the stream
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
	c.conn.SetWriteDeadline(time.Now().Add(c.srv.opts.TCPIdleTimeout))
	_, err := c.conn.Write(buf)
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

// maxSpare is the largest write buffer a connection keeps for reuse: a
// burst of big answers must not pin its memory for the connection's life.
const maxSpare = 64 << 10
