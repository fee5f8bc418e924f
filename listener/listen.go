package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// bindAll binds every configured address over UDP and TCP into s.udp and
// s.tcp. On failure it closes what it bound and returns the error. The
// caller holds s.mu.
func (s *Server) bindAll() error {
	var skipped error
	for _, ap := range s.opts.Addrs {
		us, ln, err := s.bind(ap)
		if err != nil && ap.Addr().Is6() && ap.Addr().IsUnspecified() && noIPv6(err) {
			s.log.Warn("no IPv6 on this host, not listening on it", "addr", ap, "err", err)
			skipped = err
			continue
		}
		if err != nil {
			s.closeBound()
			return fmt.Errorf("listener: %w", err)
		}
		s.udp = append(s.udp, us...)
		s.tcp = append(s.tcp, ln)
	}
	if len(s.udp) == 0 {
		return fmt.Errorf("listener: nothing bound: %w", skipped)
	}
	return nil
}

// bind binds ap over UDP and then TCP, with the address family's own
// network ("udp4" or "udp6") so that an IPv6 socket never takes IPv4
// traffic and 0.0.0.0 and [::] can both be bound on one port.
//
// UDP gets udpSocketsPerAddr sockets on the address (SO_REUSEPORT), each
// with its own read loop; the first one's port (chosen by the kernel for
// port 0) is the others'. TCP binds the address as given: with port 0 it
// gets a port of its own.
func (s *Server) bind(ap netip.AddrPort) ([]*udpSocket, *net.TCPListener, error) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	v6 := ap.Addr().Is6()
	udpNet, tcpNet := "udp4", "tcp4"
	if v6 {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	var us []*udpSocket
	closeUDP := func() {
		for _, u := range us {
			u.conn.Close()
		}
	}
	lc := net.ListenConfig{Control: reusePort}
	uap := ap
	for range udpSocketsPerAddr() {
		pc, err := lc.ListenPacket(context.Background(), udpNet, uap.String())
		if err != nil {
			closeUDP()
			return nil, nil, err
		}
		u := &udpSocket{v6: v6}
		if ap.Addr().IsUnspecified() {
			// On a multi-homed host the kernel would pick the reply's
			// source by route, and a client drops a reply from an
			// address it did not ask.
			if err := enablePktinfo(pc.(*net.UDPConn), v6); err != nil {
				s.log.Warn("cannot learn the address each UDP query was sent to; replies may leave from another address",
					"addr", pc.LocalAddr(), "err", err)
			} else {
				u.pktinfo = true
			}
		}
		if u.conn, err = newUDPConn(pc.(*net.UDPConn), v6); err != nil {
			closeUDP()
			return nil, nil, err
		}
		us = append(us, u)
		uap = u.addr() // the port the kernel chose, for the next sockets
	}
	ln, err := net.ListenTCP(tcpNet, net.TCPAddrFromAddrPort(ap))
	if err != nil {
		closeUDP()
		return nil, nil, err
	}
	return us, ln, nil
}

// closeBound closes and forgets every socket bound so far.
func (s *Server) closeBound() {
	for _, u := range s.udp {
		u.conn.Close()
	}
	for _, ln := range s.tcp {
		ln.Close()
	}
	s.udp, s.tcp = nil, nil
}

// noIPv6 reports whether a bind error means that the host has no IPv6.
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)
}
