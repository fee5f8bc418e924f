package main

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
)

// streamBuf sizes the per-connection read and write buffers: many
// pipelined queries are read, and their answers written, per system call.
const streamBuf = 64 << 10

// counters are one listener's totals, printed by the stats listener.
type counters struct {
	name    string
	accepts atomic.Int64
	open    atomic.Int64
	queries atomic.Int64
}

// serveStream accepts DNS-over-TCP (or, with a TLS config, DNS-over-TLS)
// connections on ln and answers every query on each, pipelined, in order,
// each answer delay after its query (0: at once).
func serveStream(ln net.Listener, conf *tls.Config, a answerer, c *counters, delay time.Duration) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Printf("%s: accept: %v", c.name, err)
			continue
		}
		c.accepts.Add(1)
		if conf != nil {
			nc = tls.Server(nc, conf)
		}
		go serveConn(nc, a, c, delay)
	}
}

// serveConn answers the queries of one connection. Answers are buffered
// and flushed when no further query is already read, so a burst of
// pipelined queries gets its answers in few TLS records and writes.
func serveConn(nc net.Conn, a answerer, c *counters, delay time.Duration) {
	c.open.Add(1)
	defer c.open.Add(-1)
	defer nc.Close()
	r := bufio.NewReaderSize(nc, streamBuf)
	if delay > 0 {
		d := newDelayedWriter(nc, delay)
		defer d.close()
		serveDelayed(r, d, a, c)
		return
	}
	w := bufio.NewWriterSize(nc, streamBuf)
	msg := make([]byte, 0, 512)
	out := make([]byte, 0, 512)
	for {
		var lenBuf [2]byte
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return
		}
		size := int(binary.BigEndian.Uint16(lenBuf[:]))
		if cap(msg) < size {
			msg = make([]byte, size)
		}
		msg = msg[:size]
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		out = a.appendAnswer(append(out[:0], 0, 0), msg)
		if len(out) > 2 {
			binary.BigEndian.PutUint16(out, uint16(len(out)-2))
			if _, err := w.Write(out); err != nil {
				return
			}
			c.queries.Add(1)
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// serveDelayed is serveConn's loop for a connection whose answers are
// held back: each goes to d, which writes it when due.
func serveDelayed(r *bufio.Reader, d *delayedWriter, a answerer, c *counters) {
	var msg, out []byte
	for {
		var lenBuf [2]byte
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return
		}
		size := int(binary.BigEndian.Uint16(lenBuf[:]))
		msg = slices.Grow(msg[:0], size)[:size]
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		out = a.appendAnswer(append(out[:0], 0, 0), msg)
		if len(out) > 2 {
			binary.BigEndian.PutUint16(out, uint16(len(out)-2))
			d.add(out)
			c.queries.Add(1)
		}
	}
}

// serveUDP answers datagrams on pc with one reader per CPU.
func serveUDP(pc *net.UDPConn, a answerer, c *counters) {
	for range runtime.GOMAXPROCS(0) {
		go func() {
			buf := make([]byte, 65535)
			out := make([]byte, 0, 512)
			for {
				size, client, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				out = a.appendAnswer(out[:0], buf[:size])
				if len(out) == 0 {
					continue
				}
				pc.WriteToUDPAddrPort(out, client)
				c.queries.Add(1)
			}
		}()
	}
}

// serveStats writes every listener's counters to each connection it
// accepts, one line each, and closes it: `exec 3<>/dev/tcp/...` reads it.
func serveStats(ln net.Listener, all []*counters) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		for _, c := range all {
			fmt.Fprintf(nc, "%s accepts=%d open=%d queries=%d\n",
				c.name, c.accepts.Load(), c.open.Load(), c.queries.Load())
		}
		nc.Close()
	}
}
