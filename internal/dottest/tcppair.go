package dottest

import (
	"net"
	"testing"
	"time"
)

// TCPPair returns a connected pair of loopback TCP sockets, the dialed
// end and the accepted one, both closed when the test ends.
func TCPPair(tb testing.TB) (dialed, accepted net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	dialed, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dialed.Close() })
	select {
	case c, ok := <-ch:
		if !ok {
			tb.Fatal("accept failed")
		}
		tb.Cleanup(func() { c.Close() })
		return dialed, c
	case <-time.After(10 * time.Second):
		tb.Fatal("no connection accepted")
	}
	return nil, nil
}
