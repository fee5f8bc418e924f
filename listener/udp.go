package listener

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
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

// udpBatch is how many datagrams one read (recvmmsg on Linux) takes and
// one write (sendmmsg) sends at most: under load a system call moves
// several, and a lone query is read and answered alone, never waiting
// for company.
const udpBatch = 8

// batchConn reads and writes datagrams in batches: ipv4.PacketConn and
// ipv6.PacketConn.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func (u *udpSocket) batchConn() batchConn {
	if u.v6 {
		return ipv6.NewPacketConn(u.conn)
	}
	return ipv4.NewPacketConn(u.conn)
}

// serveUDP reads datagrams from u until Shutdown. It answers those the
// resolver's fast path can answer itself, at once, writing the answers
// of one read together, and hands the others to worker goroutines, at
// most MaxUDPInflight at once.
func (s *Server) serveUDP(u *udpSocket) {
	defer s.wg.Done()
	bc := u.batchConn()
	// A query is read whole whatever its size: a client may send a big
	// OPT record (padding, cookies) even when its answer is small.
	in := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, dns.MaxMsgSize)}
		if u.pktinfo {
			in[i].OOB = make([]byte, oobSize)
		}
	}
	// The fast path's answers, each in a buffer of its own, reused.
	answers := make([][]byte, udpBatch)
	bufs := make([][1][]byte, udpBatch)
	out := make([]ipv4.Message, 0, udpBatch)
	slow := make([]int, 0, udpBatch)
	sc := new(scratch)
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if s.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.readWarn.warn(s.log, "reading UDP query failed", "addr", u.addr(), "err", err)
			s.pause(readErrorPause)
			continue
		}
		out, slow = out[:0], slow[:0]
		for i := range in[:n] {
			m := &in[i]
			client := clientOf(m.Addr)
			if !client.IsValid() {
				continue
			}
			wire, ok := s.answerPacked(sc, answers[i][:0], m.Buffers[0][:m.N], client, transportUDP)
			if !ok {
				slow = append(slow, i)
				continue
			}
			answers[i] = wire
			bufs[i][0] = wire
			reply := ipv4.Message{Buffers: bufs[i][:], Addr: m.Addr}
			if u.pktinfo {
				reply.OOB = parseDst(m.OOB[:m.NN], u.v6).oob()
			}
			out = append(out, reply)
		}
		s.writeBatch(bc, out)
		for _, i := range slow {
			if !s.dispatchUDP(u, &in[i]) {
				return
			}
		}
	}
}

// clientOf returns the address a datagram came from; invalid when it
// cannot be read.
func clientOf(addr net.Addr) netip.AddrPort {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// writeBatch sends the answers in out, skipping one a write fails on
// (the client is gone, or its route).
func (s *Server) writeBatch(bc batchConn, out []ipv4.Message) {
	for len(out) > 0 {
		n, err := bc.WriteBatch(out, 0)
		if err != nil {
			// sendmmsg failing on the first message reports -1.
			n = max(n, 0)
			if n >= len(out) {
				return
			}
			s.log.Debug("writing UDP answer failed", "client", out[n].Addr, "err", err)
			n++
		}
		out = out[n:]
	}
}

// dispatchUDP hands the datagram m to a worker, starting one when none is
// idle. At MaxUDPInflight it waits: the kernel's socket buffer holds (or
// drops) what clients send meanwhile. It reports false on Shutdown.
func (s *Server) dispatchUDP(u *udpSocket, m *ipv4.Message) bool {
	select {
	case s.udpSem <- struct{}{}:
	case <-s.done:
		return false
	}
	raw := make([]byte, m.N)
	copy(raw, m.Buffers[0])
	var src replySrc
	if u.pktinfo {
		src = parseDst(m.OOB[:m.NN], u.v6)
	}
	s.dispatch(job{u: u, raw: raw, client: clientOf(m.Addr), src: src})
	return true
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
