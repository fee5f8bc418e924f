package rawconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// testTimeout bounds every wait of these tests; a hang fails instead.
const testTimeout = 10 * time.Second

// pair returns a wrapped client connection and the server's end of it,
// both on loopback, closed at the test's end.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	c, s := dottest.TCPPair(t)
	return Wrap(c), s
}

// TestWrap: data goes both ways whole, a write larger than the socket's
// buffers waits for the peer to read, and the errors read as net.Conn's:
// io.EOF when the peer closes, a timeout at the read deadline,
// net.ErrClosed once closed.
func TestWrap(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB: more than loopback buffers take at once
	tests := []struct {
		name string
		run  func(t *testing.T, c, peer net.Conn)
	}{
		{"small both ways", func(t *testing.T, c, peer net.Conn) {
			if _, err := c.Write([]byte("query")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 5)
			peer.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := io.ReadFull(peer, got); err != nil || string(got) != "query" {
				t.Fatalf("peer read %q, %v", got, err)
			}
			if _, err := peer.Write([]byte("answer")); err != nil {
				t.Fatal(err)
			}
			got = make([]byte, 6)
			c.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "answer" {
				t.Fatalf("read %q, %v", got, err)
			}
		}},
		{"large write waits for room", func(t *testing.T, c, peer net.Conn) {
			read := make(chan []byte, 1)
			go func() {
				peer.SetReadDeadline(time.Now().Add(testTimeout))
				b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big))))
				read <- b
			}()
			c.SetWriteDeadline(time.Now().Add(testTimeout))
			n, err := c.Write(big)
			if err != nil || n != len(big) {
				t.Fatalf("wrote %d of %d: %v", n, len(big), err)
			}
			if got := <-read; !bytes.Equal(got, big) {
				t.Fatalf("peer read %d octets, not what was written", len(got))
			}
		}},
		{"peer closes: EOF", func(t *testing.T, c, peer net.Conn) {
			peer.Close()
			c.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := c.Read(make([]byte, 10)); err != io.EOF {
				t.Fatalf("read after the peer closed: %v, want io.EOF", err)
			}
		}},
		{"read deadline: timeout", func(t *testing.T, c, _ net.Conn) {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := c.Read(make([]byte, 10))
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past the deadline: %v, want a timeout", err)
			}
		}},
		{"closed: net.ErrClosed", func(t *testing.T, c, _ net.Conn) {
			c.Close()
			if _, err := c.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("read after Close: %v, want net.ErrClosed", err)
			}
			if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("write after Close: %v, want net.ErrClosed", err)
			}
		}},
		{"close wakes a waiting read", func(t *testing.T, c, _ net.Conn) {
			errc := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 10))
				errc <- err
			}()
			// The read may start before or after Close; either way it
			// must end with net.ErrClosed, not wait for data.
			c.Close()
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("read ended with %v, want net.ErrClosed", err)
				}
			case <-time.After(testTimeout):
				t.Fatal("Close did not wake the read")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := pair(t)
			tt.run(t, c, peer)
		})
	}
}
