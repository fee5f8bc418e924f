package listener

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// readErrorPause slows a UDP read loop or TCP accept loop whose socket
// keeps failing (out of file descriptors, out of buffers) so that it does
// not spin.
const readErrorPause = 50 * time.Millisecond

// udpSocket is one bound UDP socket.
type udpSocket struct {
	conn    *net.UDPConn
	v6      bool
	pktinfo bool // bound to an unspecified address: reply from the one each query was sent to
}

func (u *udpSocket) addr() netip.AddrPort {
	return u.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// replySrc is the local address a UDP query arrived at, where its reply
// must come from; the zero value lets the kernel choose.
type replySrc struct {
	addr    netip.Addr
	ifIndex int
}

// serveUDP reads datagrams from u until Shutdown. It answers those the
// resolver's fast path can answer itself, at once, and hands the others
// to worker goroutines, at most MaxUDPInflight at once.
func (s *Server) serveUDP(u *udpSocket) {
	defer s.wg.Done()
	// A query is read whole whatever its size: a client may send a big
	// OPT record (padding, cookies) even when its answer is small.
	buf := make([]byte, dns.MaxMsgSize)
	var oob []byte
	if u.pktinfo {
		oob = make([]byte, oobSize)
	}
	// Answers from the resolver's fast path (cache hits) are built here
	// and sent by this goroutine.
	out := make([]byte, 0, dns.MaxMsgSize)
	for {
		n, oobn, _, client, err := u.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if s.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.readWarn.warn(s.log, "reading UDP query failed", "addr", u.addr(), "err", err)
			s.pause(readErrorPause)
			continue
		}
		if wire, ok := s.answerPacked(out[:0], buf[:n], client, transportUDP); ok {
			var src replySrc
			if u.pktinfo {
				src = parseDst(oob[:oobn], u.v6)
			}
			if _, _, err := u.conn.WriteMsgUDPAddrPort(wire, src.oob(), client); err != nil {
				s.log.Debug("writing UDP answer failed", "client", client, "err", err)
			}
			continue
		}
		// At the cap, wait here: the kernel's socket buffer holds (or
		// drops) what clients send meanwhile.
		select {
		case s.udpSem <- struct{}{}:
		case <-s.done:
			return
		}
		raw := make([]byte, n)
		copy(raw, buf[:n])
		var src replySrc
		if u.pktinfo {
			src = parseDst(oob[:oobn], u.v6)
		}
		j := udpJob{u, raw, client, src}
		select {
		case s.udpJobs <- j: // an idle worker takes it
		default:
			s.wg.Add(1)
			go s.udpWorker(j)
		}
	}
}

// udpJob is one datagram for a worker to answer.
type udpJob struct {
	u      *udpSocket
	raw    []byte
	client netip.AddrPort
	src    replySrc
}

// udpWorkerIdle is how long a UDP worker waits for another datagram
// before it exits.
const udpWorkerIdle = 5 * time.Second

// udpWorker answers j, then whatever datagrams the read loops hand it,
// until it has been idle for udpWorkerIdle or the server shuts down.
// Workers are reused rather than a goroutine started per datagram: a
// query's work grows a fresh goroutine's stack every time, which showed
// as several percent of the CPU in profiles. There are never more workers
// than queries in flight (MaxUDPInflight).
func (s *Server) udpWorker(j udpJob) {
	defer s.wg.Done()
	idle := time.NewTimer(udpWorkerIdle)
	defer idle.Stop()
	for {
		s.answerUDP(j.u, j.raw, j.client, j.src)
		idle.Reset(udpWorkerIdle)
		select {
		case j = <-s.udpJobs:
		case <-idle.C:
			return
		case <-s.done:
			return
		}
	}
}

// answerUDP answers one datagram and sends the answer from src.
func (s *Server) answerUDP(u *udpSocket, raw []byte, client netip.AddrPort, src replySrc) {
	defer func() { <-s.udpSem }()
	defer s.recoverPanic(client, transportUDP)

	wire := s.answer(raw, client, transportUDP)
	if wire == nil {
		return
	}
	if _, _, err := u.conn.WriteMsgUDPAddrPort(wire, src.oob(), client); err != nil {
		s.log.Debug("writing UDP answer failed", "client", client, "err", err)
	}
}
