package listener

import (
	"net"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsg is struct mmsghdr, one message of recvmmsg or sendmmsg: Go pads
// it to the Msghdr's alignment as C does (64 bytes on 64-bit, 32 on
// 32-bit ARM and x86).
type mmsg struct {
	hdr unix.Msghdr
	n   uint32
}

// mmsgs are the headers of one batch, with the iovecs and socket
// addresses they point to, and what the last call on them returned.
type mmsgs struct {
	hdrs  []mmsg
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // big enough for either family
	count int                     // how many hdrs the call uses
	done  int
	err   error
}

func newMmsgs(n int) mmsgs {
	m := mmsgs{hdrs: make([]mmsg, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet6, n)}
	for i := range m.hdrs {
		m.hdrs[i].hdr.Iov = &m.iovs[i]
		m.hdrs[i].hdr.Iovlen = 1
		m.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&m.names[i]))
	}
	return m
}

// setRead points the headers at the buffers of ps, for recvmmsg.
func (m *mmsgs) setRead(ps []packet) {
	m.count = min(len(ps), len(m.hdrs))
	for i := range m.count {
		h := &m.hdrs[i].hdr
		m.iovs[i].Base = &ps[i].buf[0]
		m.iovs[i].SetLen(len(ps[i].buf))
		h.Namelen = uint32(unsafe.Sizeof(m.names[i]))
		setControl(h, ps[i].oob)
		h.Flags = 0
	}
}

// getRead copies what recvmmsg read into ps.
func (m *mmsgs) getRead(ps []packet) {
	for i := range m.done {
		h := &m.hdrs[i]
		ps[i].n = int(h.n)
		ps[i].oobn = int(h.hdr.Controllen)
		ps[i].peer = sockaddrAddrPort(&m.names[i], h.hdr.Namelen)
	}
}

// setWrite points the headers at the payloads, peers and control
// messages of ps, for sendmmsg from an IPv4 or an IPv6 socket.
func (m *mmsgs) setWrite(ps []packet, v6 bool) {
	m.count = min(len(ps), len(m.hdrs))
	for i := range m.count {
		p := &ps[i]
		h := &m.hdrs[i].hdr
		m.iovs[i].Base = unsafe.SliceData(p.buf)
		m.iovs[i].SetLen(len(p.buf))
		h.Namelen = putSockaddr(&m.names[i], p.peer, v6)
		setControl(h, p.oob)
	}
}

func setControl(h *unix.Msghdr, oob []byte) {
	h.Control, h.Controllen = nil, 0
	if len(oob) > 0 {
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
}

// putSockaddr writes ap into sa as a sockaddr_in, or as a sockaddr_in6
// on an IPv6 socket, and returns its length. An IPv6 zone is taken as an
// interface index (the form sockaddrAddrPort gives it) or name.
func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort, v6 bool) uint32 {
	port := ap.Port()
	if !v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().Unmap().As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ap.Addr().As16(), Scope_id: zoneIndex(ap.Addr().Zone())}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	return unix.SizeofSockaddrInet6
}

// sockaddrAddrPort reads the sockaddr_in or sockaddr_in6 of length n in
// sa; the zero AddrPort if it is neither. An IPv6 scope becomes a zone
// that is the interface's index, not its name: looking names up would
// cost a netlink round trip per link-local query, and the index is what
// a reply needs.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	port := func(p *uint16) uint16 {
		b := (*[2]byte)(unsafe.Pointer(p))
		return uint16(b[0])<<8 | uint16(b[1])
	}
	switch {
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(&sa4.Port))
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		addr := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && addr.Is6() {
			addr = addr.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(addr, port(&sa.Port))
	}
	return netip.AddrPort{}
}

// zoneIndex is the interface index a zone names, by number or by name; 0
// when there is none.
func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}
