package listener

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestEpollModRepolls pins the kernel behaviour udpConn's read loop
// relies on: re-arming a one-shot event with EPOLL_CTL_MOD reports a
// datagram that came while it was disarmed, and wakes a poller (Go's)
// watching the epoll instance. Without it a datagram arriving between a
// read finding nothing and the arm would wait for the next one.
func TestEpollModRepolls(t *testing.T) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(err)
	defer unix.Close(s)
	must(unix.Bind(s, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := unix.Getsockname(s)
	must(err)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	must(err)
	defer unix.Close(ep)
	outer, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	must(err)
	defer unix.Close(outer)
	must(unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, s, &unix.EpollEvent{Events: unix.EPOLLONESHOT, Fd: int32(s)}))
	must(unix.EpollCtl(outer, unix.EPOLL_CTL_ADD, ep, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(ep)}))
	ev := make([]unix.EpollEvent, 4)
	for round := range 3 {
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		must(err)
		must(unix.Sendto(c, []byte("x"), 0, sa)) // while disarmed
		unix.Close(c)
		if n, _ := unix.EpollWait(outer, ev, 0); n != 0 {
			t.Fatalf("round %d: the outer instance was woken %d times while disarmed", round, n)
		}
		must(unix.EpollCtl(ep, unix.EPOLL_CTL_MOD, s, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(s)}))
		if n, _ := unix.EpollWait(outer, ev, 0); n != 1 {
			t.Fatalf("round %d: the outer instance was not woken by the arm", round)
		}
		if n, _ := unix.EpollWait(ep, ev, 0); n != 1 {
			t.Fatalf("round %d: the socket's event did not fire on the arm", round)
		}
		buf := make([]byte, 8)
		if n, _, err := unix.Recvfrom(s, buf, unix.MSG_DONTWAIT); err != nil || n != 1 {
			t.Fatalf("round %d: read %d, %v", round, n, err)
		}
	}
}

// TestPktinfoV6: on [::], the address an IPv6 query was sent to is read
// from its packet info, and an answer sent with that as its source leaves
// by both send paths; a source the host does not have is refused, which
// shows the kernel reads the control message written.
func TestPktinfoV6(t *testing.T) {
	pc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	if err := enablePktinfo(pc, true); err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	c, err := newUDPConn(pc, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := net.DialUDP("udp6", nil, &net.UDPAddr{IP: net.IPv6loopback, Port: port})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer cl.Close()
	if _, err := cl.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	ps := []packet{{buf: make([]byte, 64), oob: make([]byte, oobSize)}}
	if _, err := c.readBatch(ps); err != nil {
		t.Fatal(err)
	}
	src := parseDst(ps[0].oob[:ps[0].oobn], true)
	if src.addr != netip.IPv6Loopback() || src.ifIndex == 0 {
		t.Fatalf("sent to %+v, want ::1 on an interface", src)
	}
	oob := src.appendOOB(nil)
	if err := c.writeTo([]byte("a"), oob, ps[0].peer); err != nil {
		t.Fatal(err)
	}
	if n, err := c.writeBatch([]packet{{buf: []byte("b"), peer: ps[0].peer, oob: oob}}); n != 1 || err != nil {
		t.Fatalf("writeBatch: %d, %v", n, err)
	}
	bad := replySrc{addr: netip.MustParseAddr("2001:db8::5")}.appendOOB(nil)
	if err := c.writeTo([]byte("c"), bad, ps[0].peer); err == nil {
		t.Error("an answer from a source the host does not have was sent")
	}
	cl.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 8)
	for _, want := range []string{"a", "b"} {
		if n, err := cl.Read(buf); err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
}

// TestMmsgSize: mmsg has struct mmsghdr's size, 64 bytes on 64-bit and
// 32 on 32-bit, or recvmmsg would misread every message after the first.
func TestMmsgSize(t *testing.T) {
	want := uintptr(64)
	if unsafe.Sizeof(uintptr(0)) == 4 {
		want = 32
	}
	if got := unsafe.Sizeof(mmsg{}); got != want {
		t.Fatalf("mmsg is %d bytes, want %d", got, want)
	}
}

// TestParseDstMalformed: control data that is cut short or claims more
// than it holds reads as no packet info, never a panic.
func TestParseDstMalformed(t *testing.T) {
	good := replySrc{addr: netip.MustParseAddr("192.0.2.1")}.appendOOB(nil)
	for _, oob := range [][]byte{nil, good[:4], good[:unix.SizeofCmsghdr], good[:unix.CmsgLen(unix.SizeofInet4Pktinfo)-1], make([]byte, 64)} {
		for _, v6 := range []bool{false, true} {
			if got := parseDst(oob, v6); got.addr.IsValid() {
				t.Errorf("%x (v6 %v) read as %+v", oob, v6, got)
			}
		}
	}
	// What appendOOB writes for IPv6 is what the kernel reports.
	want := replySrc{addr: netip.MustParseAddr("2001:db8::1"), ifIndex: 3}
	if got := parseDst(want.appendOOB(nil), true); got != want {
		t.Errorf("IPv6 packet info read back as %+v, want %+v", got, want)
	}
}

// TestReadBatchGivesUpOnIdleWakeups: a socket whose readability event
// keeps firing with nothing to read (here: shut down for reading) makes
// readBatch return an error, for the read loop to pause on, rather than
// spin inside it.
func TestReadBatchGivesUpOnIdleWakeups(t *testing.T) {
	c, _ := loopbackUDPConn(t)
	c.rc.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RD) })
	done := make(chan error, 1)
	go func() {
		_, err := c.readBatch([]packet{{buf: make([]byte, 64)}})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errIdleWakeups) {
			t.Fatalf("readBatch: %v, want %v", err, errIdleWakeups)
		}
	case <-time.After(ioTimeout):
		c.stopReading()
		t.Fatal("readBatch kept waking with nothing to read")
	}
}
