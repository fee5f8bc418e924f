package upstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/miekg/dns"
)

// readLoop reads answers one after another into one buffer: deliver
// unpacks each before the next is read, and dns.Msg.Unpack keeps
// nothing of what it reads (TestAnswerKeepsNoBuffer).
func (c *conn) readLoop() {
	var lenBuf [2]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(c.tc, lenBuf[:]); err != nil {
			c.close(readErr(err))
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(c.tc, buf); err != nil {
			c.close(readErr(err))
			return
		}
		c.deliver(buf)
	}
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrConnClosed
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return errIdle
	}
	return fmt.Errorf("%w: reading answer: %w", ErrConnClosed, err)
}

// deliver hands one answer to the query waiting for it. An answer whose
// ID or question matches no waiting query is dropped (RFC 5452 §9.1): it
// is late, for a query given up on, or forged.
func (c *conn) deliver(buf []byte) {
	m := new(dns.Msg)
	unpackErr := m.Unpack(buf)
	if len(buf) < 2 {
		return
	}
	id := binary.BigEndian.Uint16(buf)
	c.mu.Lock()
	c.quietSince = time.Now()
	c.unanswered = 0
	cl, ok := c.pending[id]
	if ok && unpackErr == nil && checkAnswer(m, cl.q) != nil {
		ok = false
	}
	if ok {
		c.removeLocked(id)
	}
	c.mu.Unlock()
	switch {
	case !ok:
	case unpackErr != nil:
		cl.ch <- result{err: fmt.Errorf("%w: %w", ErrBadAnswer, unpackErr)}
	default:
		cl.ch <- result{msg: m}
	}
}
