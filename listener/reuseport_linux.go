package listener

import (
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// udpSocketsPerAddr is how many UDP sockets serve one address: one per
// CPU, at most maxUDPSockets. With one socket, answers sent from every CPU
// at once queue on that socket's lock in the kernel; with SO_REUSEPORT
// the kernel spreads clients over the sockets (by address and port), as
// Unbound's so-reuseport does.
func udpSocketsPerAddr() int { return min(runtime.GOMAXPROCS(0), maxUDPSockets) }

// maxUDPSockets bounds the UDP sockets per address, and their read
// buffers (udpBatch of 64 KiB each, touched only as far as datagrams
// fill them).
const maxUDPSockets = 8

// reusePort sets SO_REUSEPORT on a socket before it is bound.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
