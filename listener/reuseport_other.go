//go:build !linux

package listener

import "syscall"

// udpSocketsPerAddr is 1 where SO_REUSEPORT does not spread datagrams
// over sockets.
func udpSocketsPerAddr() int { return 1 }

// reusePort does nothing here.
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
