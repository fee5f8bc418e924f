package upstream

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// pipeConn returns a conn over an in-memory pipe to a TLS server that,
// once the handshake is done, never reads again: every write on the pipe
// blocks, close_notify included. release lets the server read again.
func pipeConn(t *testing.T) (c *conn, release func()) {
	t.Helper()
	ca := dottest.NewCA(t)
	cert := ca.Leaf(t, "dns.test")
	client, server := net.Pipe()
	stop := make(chan struct{})
	go func() {
		ts := tls.Server(server, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{alpnDoT}})
		if err := ts.Handshake(); err != nil {
			return
		}
		<-stop // stop reading: the peer of a stalled resolver
		buf := make([]byte, 4096)
		for {
			if _, err := server.Read(buf); err != nil {
				return
			}
		}
	}()
	tc := tls.Client(client, tlsConfig("dns.test", ca.Pool, nil, nil))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = newConn(tc, time.Hour, func() time.Duration { return time.Second })
	released := false
	release = func() {
		if !released {
			released = true
			close(stop)
		}
	}
	t.Cleanup(func() { release(); server.Close(); client.Close() })
	return c, release
}

// TestCloseNeverBlocks: closing a connection whose peer stopped reading
// returns at once, stalled or in good order; the socket closes in the
// background, and a close_notify nobody takes is given up.
func TestCloseNeverBlocks(t *testing.T) {
	for _, err := range []error{ErrStalled, ErrConnClosed} {
		t.Run(err.Error(), func(t *testing.T) {
			c, release := pipeConn(t)
			closed := make(chan struct{})
			go func() { c.close(err); close(closed) }()
			select {
			case <-closed:
			case <-time.After(3 * time.Second): // crypto/tls would wait 5 s
				release()
				t.Fatal("close waited for the peer to read close_notify")
			}
			select {
			case <-c.closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the socket was never closed")
			}
		})
	}
}

// TestCloseAllInParallel: a pool closes its connections at once, each
// bounded, not one after another at up to 5 s each.
func TestCloseAllInParallel(t *testing.T) {
	p := &pool{}
	for range 4 {
		c, _ := pipeConn(t)
		p.conns = append(p.conns, c)
	}
	conns := p.conns
	done := make(chan struct{})
	go func() { p.closeAll(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * time.Second): // one after another: 20 s
		t.Fatal("closeAll took too long")
	}
	for _, c := range conns {
		select {
		case <-c.closed:
		default:
			t.Fatal("closeAll returned with a socket open")
		}
	}
}
