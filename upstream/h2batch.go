package upstream

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"time"
)

// maxWriteQueue bounds what a batchConn holds for a peer that stopped
// reading: past it the connection fails, as a blocked write would after
// writeTimeout.
const maxWriteQueue = 1 << 20

// errWriteQueueFull is why a batchConn failed when maxWriteQueue was
// reached.
var errWriteQueueFull = errors.New("write queue full: the peer stopped reading")

// batchConn is an HTTP/2 connection's TLS connection, as h2Conn's
// framer writes to it: writes are queued, and a writer of its own sends
// everything queued, each time it runs, in one write(2), as one TLS
// record per 16 KiB. A query's HEADERS and DATA, a WINDOW_UPDATE, the
// frames of many requests under load, share one record and one system
// call, sealed on the writer and not on each query's goroutine. Reads go
// straight to the TLS connection.
//
// A write error, a write blocked for writeTimeout or more than
// maxWriteQueue queued closes the connection, which fails every request
// on it at once, as on DoT; later writes get that error.
type batchConn struct {
	net.Conn

	mu    sync.Mutex
	queue []byte // what Write took and the writer has not sent
	spare []byte // the buffer the writer sent last, for reuse
	err   error  // why writing failed, for good

	wake      chan struct{} // buffered: something is queued
	done      chan struct{} // closed by Close
	exited    chan struct{} // closed when the writer returns
	closeOnce sync.Once
}

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{
		Conn:   c,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go b.writeLoop()
	return b
}

// Write queues p for the writer. It fails only when an earlier write
// failed or the connection is closed.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.err == nil && len(b.queue)+len(p) > maxWriteQueue {
		b.err = errWriteQueueFull
		b.Conn.Close()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.queue = append(b.queue, p...)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // the writer has been told already
	}
	return len(p), nil
}

// writeLoop sends what is queued each time it is told, until the
// connection closes; what is queued when Close is called still goes
// out (a TLS close_notify among it).
func (b *batchConn) writeLoop() {
	defer close(b.exited)
	for {
		closing := false
		select {
		case <-b.wake:
			// Let the requests already runnable queue theirs first, as
			// the DoT writer does (connwrite.go).
			runtime.Gosched()
		case <-b.done:
			closing = true
		}
		b.mu.Lock()
		buf := b.queue
		b.queue, b.spare = b.spare[:0], nil
		b.mu.Unlock()
		if len(buf) > 0 {
			b.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			_, err := b.Conn.Write(buf)
			b.mu.Lock()
			b.spare = buf[:0]
			if err != nil && b.err == nil {
				b.err = err
			}
			b.mu.Unlock()
			if err != nil {
				b.Conn.Close()
				return
			}
		}
		if closing {
			return
		}
	}
}

// Close sends what is queued, within writeTimeout, and closes the
// socket.
func (b *batchConn) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		if b.err == nil {
			b.err = net.ErrClosed
		}
		b.mu.Unlock()
		close(b.done)
	})
	<-b.exited
	return b.Conn.Close()
}
