package listener

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// TestWriteToConcurrentSenders: writeTo's sendmsg arguments come from a
// pool shared by every worker. Workers sending at once, each its own
// answers of their own lengths to a peer of its own, must each deliver
// exactly its datagrams to its peer: a sender (address, iovec, control
// message) used by two sends at once would cross them.
func TestWriteToConcurrentSenders(t *testing.T) {
	const (
		workers = 8
		each    = 50
	)
	c, _ := loopbackUDPConn(t)
	payload := func(w, i int) []byte {
		return append([]byte(fmt.Sprintf("w%d-%d:", w, i)), bytes.Repeat([]byte{byte('a' + w)}, (w*37+i*11)%300)...)
	}
	errs := make(chan error, workers*(each+1))
	var wg sync.WaitGroup
	for w := range workers {
		peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { peer.Close() })
		to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
		wg.Go(func() {
			for i := range each {
				if err := c.writeTo(payload(w, i), nil, to); err != nil {
					errs <- fmt.Errorf("worker %d send %d: %w", w, i, err)
					return
				}
			}
		})
		wg.Go(func() {
			buf := make([]byte, 1024)
			peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			for i := range each {
				n, err := peer.Read(buf)
				if err != nil {
					errs <- fmt.Errorf("worker %d's peer, datagram %d: %w", w, i, err)
					return
				}
				// One sender's datagrams arrive in its order.
				if want := payload(w, i); !bytes.Equal(buf[:n], want) {
					errs <- fmt.Errorf("worker %d's peer, datagram %d: %q, want %q", w, i, buf[:n], want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
