package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// TestBatchConnWrites: what many goroutines write arrives whole, each
// write in one piece and each goroutine's in its order, and Close sends
// what is still queued before the end of the stream.
func TestBatchConnWrites(t *testing.T) {
	const writers, each = 8, 200
	ours, peer := dottest.TCPPair(t)
	b := newBatchConn(ours)
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(peer)
		got <- all
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := fmt.Fprintf(b, "<%d:%d>", w, i); err != nil {
					t.Errorf("write %d of writer %d: %v", i, w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	var all []byte
	select {
	case all = <-got:
	case <-time.After(testTimeout):
		t.Fatal("the peer never saw the end of the stream")
	}
	next := make([]int, writers)
	for len(all) > 0 {
		var w, i int
		if _, err := fmt.Sscanf(string(all), "<%d:%d>", &w, &i); err != nil {
			t.Fatalf("stream garbled at %q: %v", all[:min(len(all), 20)], err)
		}
		if w < 0 || w >= writers || i != next[w] {
			t.Fatalf("writer %d's write %d arrived where %d was due", w, i, next[w])
		}
		next[w]++
		all = all[bytes.IndexByte(all, '>')+1:]
	}
	for w, n := range next {
		if n != each {
			t.Errorf("writer %d: %d writes arrived, want %d", w, n, each)
		}
	}
	if _, err := b.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want %v", err, net.ErrClosed)
	}
}

// TestBatchConnPeerNotReading: past maxWriteQueue queued for a peer that
// reads nothing, writes fail and the socket is closed, so that a reader
// of the connection (HTTP/2's read loop) fails too.
func TestBatchConnPeerNotReading(t *testing.T) {
	ours, _ := dottest.TCPPair(t)
	b := newBatchConn(ours)
	t.Cleanup(func() { b.Close() })
	readErr := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 1))
		readErr <- err
	}()
	chunk := make([]byte, 64<<10)
	var err error
	for i := 0; i < 32*maxWriteQueue/len(chunk) && err == nil; i++ {
		_, err = b.Write(chunk)
	}
	if err == nil {
		t.Fatalf("%d octets written to a peer that reads nothing, no error", 32*maxWriteQueue)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("read succeeded on a failed connection")
		}
	case <-time.After(testTimeout):
		t.Fatal("a read still blocked after the connection failed")
	}
}
