package listener

import (
	"net"
	"net/netip"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSockaddrRoundTrip: addresses written for sendmmsg read back the
// same, IPv4 on IPv4 sockets and IPv6 (with an interface zone, by index
// or by name) on IPv6 ones.
func TestSockaddrRoundTrip(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no lo: %v", err)
	}
	for _, tt := range []struct {
		in, want string
		v6       bool
	}{
		{"192.0.2.1:53", "192.0.2.1:53", false},
		{"127.0.0.1:65535", "127.0.0.1:65535", false},
		{"[2001:db8::1]:5353", "[2001:db8::1]:5353", true},
		{"[fe80::1%7]:1", "[fe80::1%7]:1", true},
		{"[fe80::1%lo]:1", netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone(strconv.Itoa(lo.Index)), 1).String(), true},
		{"[::ffff:192.0.2.1]:53", "192.0.2.1:53", true},
	} {
		var sa unix.RawSockaddrInet6
		n := putSockaddr(&sa, netip.MustParseAddrPort(tt.in), tt.v6)
		if got := sockaddrAddrPort(&sa, n).String(); got != tt.want {
			t.Errorf("%s: read back %s, want %s", tt.in, got, tt.want)
		}
	}
	var sa unix.RawSockaddrInet6
	if got := sockaddrAddrPort(&sa, 0); got.IsValid() {
		t.Errorf("no address read as %v", got)
	}
}
