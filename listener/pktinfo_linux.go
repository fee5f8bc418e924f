package listener

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oobSize is large enough for the IPv4 or the IPv6 packet-info control
// message that a socket with enablePktinfo receives with each datagram,
// and for the one a reply is sent with.
var oobSize = max(unix.CmsgSpace(unix.SizeofInet4Pktinfo), unix.CmsgSpace(unix.SizeofInet6Pktinfo))

// enablePktinfo asks the kernel to report, with each datagram received on
// c, the address it was sent to and the interface it came in on
// (IP_PKTINFO, IPV6_RECVPKTINFO).
func enablePktinfo(c *net.UDPConn, v6 bool) error {
	sc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = sc.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// pktinfoKind returns the level, type and data size of the IPv4 or the
// IPv6 packet-info control message.
func pktinfoKind(v6 bool) (level, typ, size int) {
	if v6 {
		return unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo
	}
	return unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo
}

// parseDst returns where a datagram was sent, from the control messages
// that came with it; the zero replySrc if there is no packet info.
func parseDst(oob []byte, v6 bool) replySrc {
	level, typ, size := pktinfoKind(v6)
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || uint64(h.Len) > uint64(len(oob)) {
			return replySrc{}
		}
		data := oob[unix.CmsgLen(0):h.Len]
		if int(h.Level) == level && int(h.Type) == typ && len(data) >= size {
			if v6 {
				pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
				return replySrc{addr: netip.AddrFrom16(pi.Addr).Unmap(), ifIndex: int(pi.Ifindex)}
			}
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return replySrc{addr: netip.AddrFrom4(pi.Addr), ifIndex: int(pi.Ifindex)}
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return replySrc{}
}

// appendOOB appends the control message that makes a reply leave from
// r's address to dst; it appends nothing for the zero replySrc, which
// lets the kernel choose.
func (r replySrc) appendOOB(dst []byte) []byte {
	if !r.addr.IsValid() {
		return dst
	}
	level, typ, size := pktinfoKind(!r.addr.Is4())
	start := len(dst)
	dst = append(dst, make([]byte, unix.CmsgSpace(size))...)
	b := dst[start:]
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(size))
	data := unsafe.Pointer(&b[unix.CmsgLen(0)])
	if r.addr.Is4() {
		// No interface index: with one, Linux would send by that
		// interface even when the route to the client is another.
		(*unix.Inet4Pktinfo)(data).Spec_dst = r.addr.As4()
		return dst
	}
	// An IPv6 link-local source needs its interface to mean anything.
	pi := (*unix.Inet6Pktinfo)(data)
	pi.Addr, pi.Ifindex = r.addr.As16(), uint32(r.ifIndex)
	return dst
}
