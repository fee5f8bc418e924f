package listener

import (
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// readErrorPause slows a UDP read loop or TCP accept loop whose socket
// keeps failing (out of file descriptors, out of buffers) so that it does
// not spin.
const readErrorPause = 50 * time.Millisecond

// udpSocket is one bound UDP socket.
type udpSocket struct {
	conn    *udpConn
	v6      bool
	pktinfo bool // bound to an unspecified address: reply from the one each query was sent to
}

func (u *udpSocket) addr() netip.AddrPort { return u.conn.localAddr() }

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

// packet is one datagram. Read: buf is the buffer, n the octets read
// from peer, oob the control buffer and oobn what was read into it.
// Written: buf is the payload, sent to peer with the control message oob.
type packet struct {
	buf  []byte
	n    int
	peer netip.AddrPort
	oob  []byte
	oobn int
}

// serveUDP reads datagrams from u until Shutdown. It answers those the
// resolver chain can answer at once (answerNow), writing the answers of
// one read together, and hands the others to worker goroutines, at most
// MaxUDPInflight at once.
func (s *Server) serveUDP(u *udpSocket) {
	defer s.wg.Done()
	// A query is read whole whatever its size: a client may send a big
	// OPT record (padding, cookies) even when its answer is small.
	in := make([]packet, udpBatch)
	for i := range in {
		in[i].buf = make([]byte, dns.MaxMsgSize)
		if u.pktinfo {
			in[i].oob = make([]byte, oobSize)
		}
	}
	// The answers made at once and their control messages, each in a
	// buffer of its own, reused.
	answers := make([][]byte, udpBatch)
	oobs := make([][]byte, udpBatch)
	out := make([]packet, 0, udpBatch)
	// The queries whose answers wait, with the packets they came in.
	waiting := make([]*query, 0, udpBatch)
	from := make([]int, 0, udpBatch)
	sc := new(scratch)
	for {
		n, err := u.conn.readBatch(in)
		if s.closing() {
			return
		}
		if err != nil {
			s.readWarn.Warn(s.log, "reading UDP query failed", "addr", u.addr(), "err", err)
			s.pause(readErrorPause)
			continue
		}
		out, waiting, from = out[:0], waiting[:0], from[:0]
		live := s.live.Load()
		for i := range in[:n] {
			p := &in[i]
			if !p.peer.IsValid() {
				continue
			}
			wire, wait := s.answerNow(sc, answers[i][:0], p.buf[:p.n], p.peer, resolver.UDP)
			if wait {
				waiting, from = append(waiting, detach(&sc.q)), append(from, i)
				continue
			}
			answers[i] = wire
			if len(wire) > 0 {
				wire = s.limitUDP(live, wire[:0], wire, p.peer) // a slip overwrites the answer it replaces
			}
			if len(wire) == 0 {
				continue // dropped
			}
			reply := packet{buf: wire, peer: p.peer}
			if u.pktinfo {
				oobs[i] = parseDst(p.oob[:p.oobn], u.v6).appendOOB(oobs[i][:0])
				reply.oob = oobs[i]
			}
			out = append(out, reply)
		}
		s.writeBatch(u.conn, out)
		for j, q := range waiting {
			if !s.dispatchUDP(u, q, &in[from[j]]) {
				return
			}
		}
	}
}

// writeBatch sends the answers in out, skipping one a write fails on
// (the client is gone, or its route).
func (s *Server) writeBatch(c *udpConn, out []packet) {
	for len(out) > 0 {
		n, err := c.writeBatch(out)
		if err != nil {
			if n >= len(out) {
				return
			}
			s.log.Debug("writing UDP answer failed", "client", out[n].peer, "err", err)
			n++
		}
		out = out[n:]
	}
}

// dispatchUDP hands q, which came in the datagram p, to a worker,
// starting one when none is idle. A query of a client at its share of
// the in-flight budget is dropped. At MaxUDPInflight or MaxInflight it
// waits: the kernel's socket buffer holds (or drops) what clients send
// meanwhile. It reports false on Shutdown.
func (s *Server) dispatchUDP(u *udpSocket, q *query, p *packet) bool {
	sh := s.budget.join(clientKey(q.client.Addr()))
	t, ok := s.budget.takeShare(sh)
	if !ok {
		s.budget.leave(sh)
		s.shareDropped.Add(1)
		s.capWarn.Warn(s.log, "UDP query dropped: client at its share of queries in flight",
			"client", q.client, "limit", "MaxInflightPerClient")
		return true
	}
	select {
	case s.udpSem <- struct{}{}:
	case <-s.done:
		s.budget.undoShare(t)
		s.budget.leave(sh)
		return false
	}
	select {
	case s.budget.global <- struct{}{}:
	case <-s.done:
		<-s.udpSem
		s.budget.undoShare(t)
		s.budget.leave(sh)
		return false
	}
	var src replySrc
	if u.pktinfo {
		src = parseDst(p.oob[:p.oobn], u.v6)
	}
	s.dispatch(job{u: u, q: q, src: src, t: t})
	return true
}

// answerUDP answers one query that had to wait, in a worker, and sends
// the answer from src.
func (s *Server) answerUDP(u *udpSocket, q *query, src replySrc, t ticket) {
	defer func() { <-s.udpSem }()
	defer func() {
		s.budget.release(t)
		s.budget.leave(t.sh)
	}()
	defer s.recoverPanic(q.client, resolver.UDP)

	wire := s.answerWaiting(q)
	if len(wire) == 0 {
		return
	}
	if wire = s.limitUDP(s.live.Load(), nil, wire, q.client); wire == nil {
		return
	}
	if err := u.conn.writeTo(wire, src.appendOOB(nil), q.client); err != nil {
		s.log.Debug("writing UDP answer failed", "client", q.client, "err", err)
	}
}
