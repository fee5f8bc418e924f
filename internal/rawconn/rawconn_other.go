//go:build !linux

package rawconn

import "net"

// Wrap returns c as it is: raw reads and writes are for Linux (see
// rawconn_linux.go).
func Wrap(c net.Conn) net.Conn { return c }
