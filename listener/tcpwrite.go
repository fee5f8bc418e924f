package listener

import (
	"encoding/binary"
	"time"
)

// write sends one answer with its length prefix. Answers that workers
// finish while another write is under way go out together in the next
// one: under load one write(2) carries many.
func (c *tcpConn) write(wire []byte) error {
	c.qmu.Lock()
	c.queue = binary.BigEndian.AppendUint16(c.queue, uint16(len(wire)))
	c.queue = append(c.queue, wire...)
	c.qmu.Unlock()
	return c.drain()
}

// flush sends answers that carry their length prefixes already: the
// reader's fast answers.
func (c *tcpConn) flush(answers []byte) error {
	if len(answers) == 0 {
		return nil
	}
	c.qmu.Lock()
	c.queue = append(c.queue, answers...)
	c.qmu.Unlock()
	return c.drain()
}

// drain writes whatever is queued, once the write under way (if any) is
// done. A caller that finds the queue empty had its answers written by
// another. A failed write closes the connection: half an answer leaves
// the stream unreadable.
func (c *tcpConn) drain() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.qmu.Lock()
	buf := c.queue
	if len(buf) == 0 {
		c.qmu.Unlock()
		return nil
	}
	c.queue, c.spare = c.spare[:0], nil
	c.qmu.Unlock()

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
