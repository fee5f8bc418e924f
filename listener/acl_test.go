package listener

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestACLRefused(t *testing.T) {
	tests := []struct {
		name  string
		allow []netip.Prefix
	}{
		{name: "loopback not listed", allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{name: "empty list refuses all", allow: []netip.Prefix{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, Options{Allow: tt.allow, Resolver: msgFunc(func(context.Context, *dns.Msg) (*dns.Msg, error) {
				t.Error("resolver called for a refused client")
				return nil, errors.New("refused client")
			})})
			for tr, c := range clients(t, s) {
				c.send(t, packQuery(t, 0x77, "example.com.", dns.TypeA, 0))
				m, _ := c.recv(t)
				if m.Rcode != dns.RcodeRefused || m.Id != 0x77 || len(m.Question) != 1 || m.Question[0].Name != "example.com." {
					t.Errorf("%s: got %v, want REFUSED with the question", tr, m)
				}
			}
		})
	}
}

func TestACLAllows(t *testing.T) {
	a := newACL(append(DefaultAllow, netip.MustParsePrefix("::ffff:198.51.100.0/120")))
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true}, // IPv4-mapped, unmapped first
		{"::ffff:192.168.1.10", true},
		{"::ffff:8.8.8.8", false},
		{"8.8.8.8", false},
		{"198.51.100.7", true}, // listed as an IPv4-mapped prefix
		{"::1", true},
		{"fe80::1%eth0", true}, // zone ignored
		{"fd00::53", true},
		{"2001:db8::1", false},
		{"100.64.0.1", true},
		{"172.32.0.1", false},
	}
	for _, tt := range tests {
		if got := a.allows(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("allows(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
