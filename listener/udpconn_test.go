package listener

import (
	"net"
	"testing"
	"time"
)

// TestUDPConnStopReading: a read waiting for a datagram returns at once
// when reading stops, later reads fail at once, and answers can still
// be sent.
func TestUDPConnStopReading(t *testing.T) {
	c, _ := loopbackUDPConn(t)
	ps := []packet{{buf: make([]byte, 512)}}
	read := make(chan error, 1)
	go func() {
		_, err := c.readBatch(ps)
		read <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it wait (it returns either way)
	c.stopReading()
	select {
	case err := <-read:
		if err == nil {
			t.Fatalf("read after stopReading: %d octets from %v, no error", ps[0].n, ps[0].peer)
		}
	case <-time.After(ioTimeout):
		t.Fatal("a waiting read did not return when reading stopped")
	}
	if _, err := c.readBatch(ps); err == nil {
		t.Fatal("a read after stopReading did not fail")
	}

	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := c.writeTo([]byte("still"), nil, peer.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatalf("writeTo after stopReading: %v", err)
	}
	peer.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 16)
	if n, err := peer.Read(buf); err != nil || string(buf[:n]) != "still" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
}

// TestUDPConnWaitsThenReads: a read that finds nothing queued waits, and
// returns the datagram that comes later, with its sender; over and over.
func TestUDPConnWaitsThenReads(t *testing.T) {
	c, laddr := loopbackUDPConn(t)
	cl, err := net.DialUDP("udp4", nil, laddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	from := cl.LocalAddr().(*net.UDPAddr).AddrPort()
	ps := make([]packet, udpBatch)
	for i := range ps {
		ps[i].buf = make([]byte, 512)
	}
	for i := range 20 {
		read := make(chan int, 1)
		go func() {
			n, err := c.readBatch(ps)
			if err != nil {
				t.Error(err)
			}
			read <- n
		}()
		if i%2 == 0 {
			time.Sleep(time.Millisecond) // sometimes after the read began to wait
		}
		if _, err := cl.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-read:
			if n != 1 || ps[0].n != 1 || ps[0].buf[0] != byte(i) || ps[0].peer != from {
				t.Fatalf("round %d: %d datagrams, first %d octets %v from %v, want [%d] from %v",
					i, n, ps[0].n, ps[0].buf[:ps[0].n], ps[0].peer, i, from)
			}
		case <-time.After(ioTimeout):
			t.Fatalf("round %d: the datagram sent was not read", i)
		}
	}
}

// loopbackUDPConn is a udpConn on 127.0.0.1 and its address, closed when
// the test ends.
func loopbackUDPConn(t *testing.T) (*udpConn, *net.UDPAddr) {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	laddr := pc.LocalAddr().(*net.UDPAddr)
	c, err := newUDPConn(pc, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, laddr
}
