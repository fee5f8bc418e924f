//go:build !linux

package upstream

import "net"

// newRawConn returns c as it is: raw reads and writes are for Linux (see
// rawconn_linux.go).
func newRawConn(c net.Conn) net.Conn { return c }
