package rawconn

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawConn is a TCP connection whose reads and writes are raw system
// calls on its non-blocking socket, waiting for readiness in Go's
// network poller as net.Conn does.
//
// Why: Go makes a read or write on a socket with syscall.Syscall, which
// tells the scheduler that the thread may block. The first such call
// after the process was idle wakes the runtime's monitor thread (sysmon),
// which then polls every 20 µs until the process is idle again, and may
// hand the P to another thread when the call takes longer than that. A
// query at a low rate makes the process idle twice (waiting for the
// query, then for the upstream's answer), and so pays those wake-ups and
// context switches on every query, where the call itself, on a
// non-blocking socket, never waits. A raw call keeps its P for the call's
// few µs and wakes nobody. (The listener's UDP sockets do the same, in
// listener/udpconn_linux.go.)
type rawConn struct {
	*net.TCPConn
	rc syscall.RawConn
	// The call in progress: Read and Write each pass one function bound
	// once, so that a call allocates nothing. crypto/tls serialises
	// reads, and writes, on its side.
	rbuf, wbuf []byte
	rn, wn     int
	rerr, werr syscall.Errno
	readFn     func(fd uintptr) bool
	writeFn    func(fd uintptr) bool
}

// Wrap returns c read and written with raw system calls; a connection
// that is not TCP, or whose descriptor cannot be reached, is returned as
// it is. Only one Read and one Write may be under way at a time, as
// crypto/tls and a connection's one reader and one writer use it.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawConn{TCPConn: tc, rc: rc}
	r.readFn, r.writeFn = r.read, r.write
	return r
}

// Read reads what the socket holds, waiting in the poller (and for the
// read deadline) only when it holds nothing.
func (r *rawConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.rbuf, r.rn, r.rerr = b, 0, 0
	err := r.rc.Read(r.readFn)
	r.rbuf = nil
	switch {
	case err != nil:
		return 0, r.opError("read", err)
	case r.rerr != 0:
		return 0, r.opError("read", os.NewSyscallError("read", r.rerr))
	case r.rn == 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

func (r *rawConn) read(fd uintptr) bool {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)))
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait for readability
		case 0:
			r.rn = int(n)
		default:
			r.rerr = errno
		}
		return true
	}
}

// Write writes all of b, waiting in the poller (and for the write
// deadline) whenever the socket's buffer is full.
func (r *rawConn) Write(b []byte) (int, error) {
	r.wbuf, r.wn, r.werr = b, 0, 0
	var err error
	if len(b) > 0 {
		err = r.rc.Write(r.writeFn)
	}
	n := r.wn
	r.wbuf = nil
	switch {
	case err != nil:
		return n, r.opError("write", err)
	case r.werr != 0:
		return n, r.opError("write", os.NewSyscallError("write", r.werr))
	}
	return n, nil
}

func (r *rawConn) write(fd uintptr) bool {
	for r.wn < len(r.wbuf) {
		rest := r.wbuf[r.wn:]
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch errno {
		case 0:
			r.wn += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false // wait for room
		default:
			r.werr = errno
			return true
		}
	}
	return true
}

// opError describes err as net.Conn's methods do, so that a closed
// connection and a deadline read as they would from the socket itself.
func (r *rawConn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: err}
}
