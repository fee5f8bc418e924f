package listener

import (
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// writeBatch sends ps[i].buf to ps[i].peer with the control message
// ps[i].oob, for as many as it can, and reports how many it sent. When
// the first fails it reports 0 and the error.
func (c *udpConn) writeBatch(ps []packet) (int, error) {
	m := &c.wr
	m.setWrite(ps, c.v6)
	if err := c.rc.Write(c.writeFn); err != nil {
		return 0, err
	}
	if m.err != nil {
		return 0, os.NewSyscallError("sendmmsg", m.err)
	}
	return m.done, nil
}

// sendmmsg sends the batch, waiting (in the kernel) for room in the
// socket's buffer when there is none.
func (c *udpConn) sendmmsg(fd uintptr) bool {
	m := &c.wr
	n, errno := sendMessages(fd, &m.hdrs[0], m.count)
	m.done, m.err = int(n), nil
	if errno != 0 {
		m.done, m.err = 0, errno
	}
	return true
}

// sendMessages sends the count messages at hdrs on fd (sendmmsg), first
// with MSG_DONTWAIT as a raw system call (see udpConn); when the socket's
// buffer is full, again as a blocking one, which waits for room
// (SO_SNDTIMEO bounds the wait). It returns how many it sent.
//
// The blocking send must stay a syscall.Syscall: made raw, it would keep
// its P, sysmon would signal the thread to preempt it every 10 ms, and
// with SO_SNDTIMEO set each signal ends the wait with EINTR, which the
// loop retries, for ever.
//
// The pointer is converted in each call's arguments, never kept in a
// uintptr: only there does Go keep what it points to alive, and in place,
// for the call.
func sendMessages(fd uintptr, hdrs *mmsg, count int) (uintptr, syscall.Errno) {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(hdrs)), uintptr(count),
			unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EAGAIN {
			n, _, errno = unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(hdrs)), uintptr(count), 0, 0, 0)
		}
		if errno != unix.EINTR {
			return n, errno
		}
	}
}

// writeTo sends b to the peer with the control message oob. Any
// goroutine may call it: the workers do, for the answers of the usual
// path. The send is a raw system call with MSG_DONTWAIT first, and a
// blocking one only when the socket's buffer is full (see sendMessages):
// a blocking call is what wakes the runtime's monitor thread after the
// process was idle, which at a low query rate is every answer.
func (c *udpConn) writeTo(b, oob []byte, to netip.AddrPort) error {
	s := senders.Get().(*sender)
	s.h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.name)), Namelen: putSockaddr(&s.name, to, c.v6)}
	s.iov = unix.Iovec{Base: unsafe.SliceData(b)}
	s.iov.SetLen(len(b))
	s.h.Iov, s.h.Iovlen = &s.iov, 1
	setControl(&s.h, oob)
	err := c.rc.Write(s.send)
	errno := s.errno
	s.h, s.iov = unix.Msghdr{}, unix.Iovec{} // b and oob are the caller's again
	senders.Put(s)
	if err != nil {
		return err
	}
	if errno != 0 {
		return os.NewSyscallError("sendmsg", errno)
	}
	return nil
}

// sender holds one writeTo's sendmsg(2) arguments. Locals captured by a
// closure that RawConn.Write takes escape to the heap: they were five
// allocations per answer. Kept in senders between calls, with the
// method value bound once.
type sender struct {
	name  unix.RawSockaddrInet6
	h     unix.Msghdr
	iov   unix.Iovec
	errno syscall.Errno
	send  func(fd uintptr) bool // sendmsg, bound to this sender
}

var senders = sync.Pool{New: func() any {
	s := new(sender)
	s.send = s.sendmsg
	return s
}}

// sendmsg makes s's call on fd: raw with MSG_DONTWAIT, blocking (a
// syscall.Syscall, see sendMessages) only when the buffer is full.
func (s *sender) sendmsg(fd uintptr) bool {
	for {
		_, _, s.errno = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.h)), unix.MSG_DONTWAIT)
		if s.errno == unix.EAGAIN {
			_, _, s.errno = unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.h)), 0)
		}
		if s.errno != unix.EINTR {
			return true
		}
	}
}
