package dottest

import (
	"net"
	"net/netip"
	"sync"
	"testing"
)

// tarpitHeld bounds the connections a tarpit holds open; past it, it
// closes what it accepts.
const tarpitHeld = 256

// StartTarpit listens on a free TCP port of ip, accepts every connection
// and never writes a byte: a DoT address on a network that lets the TCP
// handshake through and drops the rest (port 853 filtered), so that the
// TLS handshake never completes. What it accepted is closed at cleanup.
func StartTarpit(tb testing.TB, ip string) netip.AddrPort {
	tb.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if len(held) < tarpitHeld {
				held = append(held, c)
			} else {
				c.Close()
			}
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}
