package listener

import (
	"net"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestSendMessagesWaitsForRoom: a send whose raw, non-blocking try finds
// no room (EAGAIN) waits for room with a blocking one, and gives up with
// EAGAIN when SO_SNDTIMEO runs out. A Unix datagram pair stands in for a
// full UDP send buffer, which loopback never fills: its sender has to
// wait while its send buffer holds datagrams the receiver has not read.
func TestSendMessagesWaitsForRoom(t *testing.T) {
	// With one P the reader below cannot run until the send gives its P
	// up, which only a blocking system call does: the raw try must find
	// the buffer still full.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	// The receiving end drains without waiting.
	if err := unix.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	setTimeout := func(d time.Duration) {
		t.Helper()
		tv := unix.NsecToTimeval(d.Nanoseconds())
		if err := unix.SetsockoptTimeval(fds[0], unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
	}
	payload := []byte("x")
	var m mmsg
	iov := unix.Iovec{Base: &payload[0]}
	iov.SetLen(len(payload))
	m.hdr.Iov, m.hdr.Iovlen = &iov, 1

	// fill fills the receiver's queue.
	fill := func() {
		t.Helper()
		for i := 0; ; i++ {
			_, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fds[0]), uintptr(unsafe.Pointer(&m)), 1,
				unix.MSG_DONTWAIT, 0, 0)
			if errno == unix.EAGAIN {
				return
			}
			if errno != 0 {
				t.Fatalf("filling the queue: %v", errno)
			}
			if i > 1<<20 {
				t.Fatal("the queue never filled")
			}
		}
	}

	// Room comes when the receiver reads what is queued; the send must
	// wait for it. The timeout, and the watchdog for a send that retries
	// for ever, only keep a broken send from hanging the test.
	fill()
	setTimeout(10 * time.Second)
	watchdog := time.AfterFunc(time.Minute, func() { panic("sendMessages never returned") })
	defer watchdog.Stop()
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 16)
		for {
			if _, err := unix.Read(fds[1], buf); err != nil {
				if err == unix.EAGAIN {
					err = nil
				}
				read <- err
				return
			}
		}
	}()
	n, errno := sendMessages(uintptr(fds[0]), &m, 1)
	if errno != 0 || n != 1 {
		t.Fatalf("send with the queue full, then room: sent %d, %v; want 1 sent", n, errno)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}

	// No room ever: it gives up when SO_SNDTIMEO runs out.
	fill()
	setTimeout(100 * time.Millisecond)
	if _, errno := sendMessages(uintptr(fds[0]), &m, 1); errno != unix.EAGAIN {
		t.Fatalf("send with the queue full and no reader: %v, want EAGAIN", errno)
	}
}

// TestWriteToAllocatesNothing: a worker's answer goes out with its
// sendmsg arguments from a pool, not five allocations of its own, and
// arrives whole at its peer. Under the race detector sync.Pool drops
// some of what it is given on purpose, hence "fewer than one".
func TestWriteToAllocatesNothing(t *testing.T) {
	c, _ := loopbackUDPConn(t)
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	payload := []byte("an answer")
	const sends = 200
	allocs := testing.AllocsPerRun(sends, func() {
		if err := c.writeTo(payload, nil, to); err != nil {
			t.Fatal(err)
		}
	})
	if allocs >= 1 {
		t.Errorf("writeTo made %.2f allocations per send, want none", allocs)
	}
	// AllocsPerRun sends once more than it counts.
	buf := make([]byte, 64)
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range sends + 1 {
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if string(buf[:n]) != string(payload) {
			t.Fatalf("datagram %d is %q, want %q", i, buf[:n], payload)
		}
	}
}
