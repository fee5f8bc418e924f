package main

import (
	"bufio"
	"net"
	"time"
)

// delayedQueue is how many answers a delayed connection may hold back at
// once: at a 50 ms delay, 4096 is room for 80,000 queries a second on one
// connection, more than any benchmark sends through a slow upstream.
const delayedQueue = 4096

// delayed is one answer held back until due.
type delayed struct {
	due    time.Time
	answer []byte
}

// delayedWriter writes each answer of one connection delay after its
// query was read, without holding back the queries behind it: a slow
// upstream that still pipelines, as a distant resolver does.
type delayedWriter struct {
	delay time.Duration
	q     chan delayed
	done  chan struct{}
}

func newDelayedWriter(nc net.Conn, delay time.Duration) *delayedWriter {
	d := &delayedWriter{delay: delay, q: make(chan delayed, delayedQueue), done: make(chan struct{})}
	go d.run(bufio.NewWriterSize(nc, streamBuf), nc)
	return d
}

// add queues a copy of answer, due delay from now.
func (d *delayedWriter) add(answer []byte) {
	d.q <- delayed{due: time.Now().Add(d.delay), answer: append([]byte(nil), answer...)}
}

// close stops the writer once the answers queued are written.
func (d *delayedWriter) close() {
	close(d.q)
	<-d.done
}

// run writes the answers in the order read (every one has the same
// delay, so that is also the order due), flushing whenever no other
// answer is due yet. After a write error it drains the queue and closes
// the connection, which ends the reader too.
func (d *delayedWriter) run(w *bufio.Writer, nc net.Conn) {
	defer close(d.done)
	failed := false
	for a := range d.q {
		if failed {
			continue
		}
		if wait := time.Until(a.due); wait > 0 {
			if w.Flush() != nil {
				failed = true
				nc.Close()
				continue
			}
			time.Sleep(wait)
		}
		if _, err := w.Write(a.answer); err != nil {
			failed = true
			nc.Close()
			continue
		}
		if len(d.q) == 0 && w.Flush() != nil {
			failed = true
			nc.Close()
		}
	}
	if !failed {
		w.Flush()
	}
}
