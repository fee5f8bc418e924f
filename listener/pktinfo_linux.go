package listener

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// oobSize is large enough for the IPv4 or the IPv6 packet-info control
// message that a socket with enablePktinfo receives with each datagram.
var oobSize = max(
	len(ipv4.NewControlMessage(ipv4.FlagDst|ipv4.FlagInterface)),
	len(ipv6.NewControlMessage(ipv6.FlagDst|ipv6.FlagInterface)),
)

// enablePktinfo asks the kernel to report, with each datagram received on
// c, the address it was sent to and the interface it came in on
// (IP_PKTINFO, IPV6_RECVPKTINFO).
func enablePktinfo(c *net.UDPConn, v6 bool) error {
	if v6 {
		return ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
	}
	return ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
}

// parseDst returns where a datagram was sent, from the control message
// that came with it; the zero replySrc if there is none.
func parseDst(oob []byte, v6 bool) replySrc {
	var ip net.IP
	var ifIndex int
	if v6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) != nil {
			return replySrc{}
		}
		ip, ifIndex = cm.Dst, cm.IfIndex
	} else {
		var cm ipv4.ControlMessage
		if cm.Parse(oob) != nil {
			return replySrc{}
		}
		ip, ifIndex = cm.Dst, cm.IfIndex
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return replySrc{}
	}
	return replySrc{addr: addr.Unmap(), ifIndex: ifIndex}
}

// oob returns the control message that makes a reply leave from r's
// address, or nil to let the kernel choose.
func (r replySrc) oob() []byte {
	if !r.addr.IsValid() {
		return nil
	}
	if r.addr.Is4() {
		// No interface index: with one, Linux would send by that
		// interface even when the route to the client is another.
		cm := ipv4.ControlMessage{Src: r.addr.AsSlice()}
		return cm.Marshal()
	}
	// An IPv6 link-local source needs its interface to mean anything.
	cm := ipv6.ControlMessage{Src: r.addr.AsSlice(), IfIndex: r.ifIndex}
	return cm.Marshal()
}
