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

// serveUDP reads datagrams from u until Shutdown and answers each in its
// own goroutine, at most MaxUDPInflight at once.
func (s *Server) serveUDP(u *udpSocket) {
	defer s.wg.Done()
	// A query is read whole whatever its size: a client may send a big
	// OPT record (padding, cookies) even when its answer is small.
	buf := make([]byte, dns.MaxMsgSize)
	var oob []byte
	if u.pktinfo {
		oob = make([]byte, oobSize)
	}
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
		s.wg.Add(1)
		go s.answerUDP(u, raw, client, src)
	}
}

// answerUDP answers one datagram and sends the answer from src.
func (s *Server) answerUDP(u *udpSocket, raw []byte, client netip.AddrPort, src replySrc) {
	defer s.wg.Done()
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
