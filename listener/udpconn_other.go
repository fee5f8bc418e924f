//go:build !linux

package listener

import (
	"net"
	"net/netip"
)

// udpConn is a bound UDP socket. Here it is Go's, read and written one
// datagram at a time; on Linux it is read and written in batches.
type udpConn struct {
	c     *net.UDPConn
	local netip.AddrPort
}

func newUDPConn(pc *net.UDPConn, _ bool) (*udpConn, error) {
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	return &udpConn{c: pc, local: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

func (c *udpConn) localAddr() netip.AddrPort { return c.local }

func (c *udpConn) Close() error { return c.c.Close() }

// stopReading makes the read loop's read return at once, and every later
// one; answers can still be sent.
func (c *udpConn) stopReading() { c.c.SetReadDeadline(aLongTimeAgo) }

// readBatch reads one datagram into ps[0], waiting in Go's poller.
func (c *udpConn) readBatch(ps []packet) (int, error) {
	n, oobn, _, peer, err := c.c.ReadMsgUDPAddrPort(ps[0].buf, ps[0].oob)
	if err != nil {
		return 0, err
	}
	ps[0].n, ps[0].oobn = n, oobn
	ps[0].peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	return 1, nil
}

// writeBatch sends each of ps in turn; it stops at the first that fails.
func (c *udpConn) writeBatch(ps []packet) (int, error) {
	for i := range ps {
		if err := c.writeTo(ps[i].buf, ps[i].oob, ps[i].peer); err != nil {
			return i, err
		}
	}
	return len(ps), nil
}

func (c *udpConn) writeTo(b, oob []byte, to netip.AddrPort) error {
	_, _, err := c.c.WriteMsgUDPAddrPort(b, oob, to)
	return err
}
