package dottest

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// ReadMsg reads one length-prefixed DNS message from a stream
// (RFC 1035 §4.2.2), as a DoT server reads a query.
func ReadMsg(r io.Reader) ([]byte, error) {
	var prefix [2]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(prefix[:]))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// Serve accepts connections on ln and hands each to serve in a goroutine
// of its own (nil serve: hold it open and say nothing) until the test
// ends; then it closes ln and every connection and waits for serve.
func Serve(tb testing.TB, ln net.Listener, serve func(net.Conn)) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if serve != nil {
				wg.Go(func() { serve(c) })
			}
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}
