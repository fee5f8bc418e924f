package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log"
	"net"
	"slices"

	"github.com/quic-go/quic-go"
)

const (
	// doqALPN is RFC 9250's ALPN token.
	doqALPN = "doq"
	// maxDoQStreams is how many queries one client may have in flight on
	// one QUIC connection (a stream each): more than any peer under test
	// keeps, so that the responder never holds one back.
	maxDoQStreams = 1000
	// doqNoError and doqProtocolError are RFC 9250's error codes: a
	// connection closed when all is well, a stream that held no query.
	doqNoError       = 0
	doqProtocolError = 2
)

// serveDoQ answers DNS over QUIC (RFC 9250) on pc: every query on a
// stream of its own, with a two-octet length before it, answered on that
// stream, which is then closed. It returns when pc is closed.
func serveDoQ(pc net.PacketConn, conf *tls.Config, a answerer, c *counters) {
	tc := conf.Clone()
	tc.NextProtos = []string{doqALPN}
	ln, err := quic.Listen(pc, tc, &quic.Config{MaxIncomingStreams: maxDoQStreams})
	if err != nil {
		log.Fatalf("%s: %v", c.name, err)
	}
	for {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		c.accepts.Add(1)
		go serveQUICConn(conn, a, c)
	}
}

// serveQUICConn answers the streams of one connection until it ends.
func serveQUICConn(conn *quic.Conn, a answerer, c *counters) {
	c.open.Add(1)
	defer c.open.Add(-1)
	defer conn.CloseWithError(doqNoError, "")
	for {
		s, err := conn.AcceptStream(context.Background())
		if err != nil {
			return
		}
		go answerStream(s, a, c)
	}
}

// answerStream answers the one query of s.
func answerStream(s *quic.Stream, a answerer, c *counters) {
	qb, ab := bufPool.Get().(*[]byte), bufPool.Get().(*[]byte)
	defer bufPool.Put(qb)
	defer bufPool.Put(ab)
	var lenBuf [2]byte
	if _, err := io.ReadFull(s, lenBuf[:]); err != nil {
		s.CancelRead(doqProtocolError)
		s.CancelWrite(doqProtocolError)
		return
	}
	size := int(binary.BigEndian.Uint16(lenBuf[:]))
	q := slices.Grow((*qb)[:0], size)[:size]
	*qb = q[:0]
	if _, err := io.ReadFull(s, q); err != nil {
		s.CancelRead(doqProtocolError)
		s.CancelWrite(doqProtocolError)
		return
	}
	out := a.appendAnswer(append((*ab)[:0], 0, 0), q)
	*ab = out[:0]
	if len(out) == 2 {
		s.CancelWrite(doqProtocolError)
		return
	}
	binary.BigEndian.PutUint16(out, uint16(len(out)-2))
	if _, err := s.Write(out); err == nil {
		c.queries.Add(1)
	}
	s.Close()
}
