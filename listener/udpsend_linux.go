package listener

import (
	"net/netip"
	"os"
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
	var name unix.RawSockaddrInet6
	h := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&name)), Namelen: putSockaddr(&name, to, c.v6)}
	iov := unix.Iovec{Base: unsafe.SliceData(b)}
	iov.SetLen(len(b))
	h.Iov, h.Iovlen = &iov, 1
	setControl(&h, oob)
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for {
			_, _, errno = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&h)), unix.MSG_DONTWAIT)
			if errno == unix.EAGAIN {
				_, _, errno = unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&h)), 0)
			}
			if errno != unix.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return os.NewSyscallError("sendmsg", errno)
	}
	return nil
}
